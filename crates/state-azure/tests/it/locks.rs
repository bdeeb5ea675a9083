//! Deployment locks as blob leases: exclusion with the holder's details, waiting on the
//! injected clock, renewal, loss when broken or unrenewable, and force-unlock.

use std::sync::Arc;
use std::time::Duration;

use fabrik_core::time::ManualClock;
use fabrik_core::{DeploymentLocks, LockError, LockHolder, acquire_lock};
use fabrik_state_azure::azurite::Azurite;

use crate::journal::shared;
use crate::support::{container, eventually, store_on};

fn holder(run_id: &str, command: &str) -> LockHolder {
    LockHolder {
        run_id: run_id.into(),
        host: "runner-7".into(),
        user: "ci".into(),
        since: "2026-12-04T10:00:00Z".into(),
        command: command.into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_holder_is_refused_with_the_first_ones_details_until_it_releases() {
    let clock = Arc::new(ManualClock::new());
    let name = container();
    let a = store_on(shared(), &name, &clock);
    let b = store_on(shared(), &name, &clock);
    let held = a
        .try_acquire("sales.dev", &holder("run-a", "apply"))
        .await
        .unwrap()
        .unwrap();
    let other = b
        .try_acquire("sales.dev", &holder("run-b", "apply"))
        .await
        .unwrap()
        .err()
        .unwrap();
    assert_eq!(other, holder("run-a", "apply"));
    assert_eq!(
        b.holder("sales.dev").await.unwrap(),
        Some(holder("run-a", "apply"))
    );
    // Another environment is another lock.
    let prod = b
        .try_acquire("sales.prod", &holder("run-b", "apply"))
        .await
        .unwrap();
    assert!(prod.is_ok());
    // Waiting: the poll sleeps on the manual clock, which advances by itself here.
    let waiting = ManualClock::auto_advance();
    let err = acquire_lock(
        &b,
        "sales.dev",
        &holder("run-b", "apply"),
        Duration::from_secs(10),
        Duration::from_secs(2),
        &waiting,
        &waiting,
    )
    .await
    .err()
    .unwrap();
    let LockError::Held { holder: h, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(h.run_id, "run-a");
    assert!(
        err.to_string().contains("run run-a (apply) by ci@runner-7"),
        "{err}"
    );
    held.release().await.unwrap();
    assert_eq!(b.holder("sales.dev").await.unwrap(), None);
    let mine = b
        .try_acquire("sales.dev", &holder("run-b", "destroy"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        b.holder("sales.dev").await.unwrap().unwrap().command,
        "destroy"
    );
    mine.release().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewed_lock_outlives_its_lease_duration() {
    let clock = Arc::new(ManualClock::new());
    let name = container();
    let a = store_on(shared(), &name, &clock);
    let held = a
        .try_acquire("env", &holder("run-a", "apply"))
        .await
        .unwrap()
        .unwrap();
    // Three renewals on the manual clock; the service's 15 s lease would have lapsed in real
    // time only if renewals failed, so the check is that each renewal is accepted.
    for _ in 0..3 {
        eventually("the renewal loop to sleep", || clock.waiting() > 0).await;
        clock.advance(Duration::from_secs(5));
    }
    eventually("the renewal loop to sleep again", || clock.waiting() > 0).await;
    assert_eq!(held.lost(), None);
    held.release().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_broken_by_someone_else_is_reported_lost_at_the_next_renewal() {
    let clock = Arc::new(ManualClock::new());
    let name = container();
    let a = store_on(shared(), &name, &clock);
    let held = a
        .try_acquire("env", &holder("run-a", "apply"))
        .await
        .unwrap()
        .unwrap();
    let third = store_on(shared(), &name, &clock);
    let released = third.force_unlock("run-a").await.unwrap();
    assert_eq!(released, vec![("env".to_owned(), holder("run-a", "apply"))]);
    assert_eq!(held.lost(), None, "not noticed before the next renewal");
    eventually("the renewal loop to sleep", || clock.waiting() > 0).await;
    clock.advance(Duration::from_secs(5));
    let why = tokio::time::timeout(Duration::from_secs(30), held.wait_lost())
        .await
        .expect("lost lease not detected");
    assert!(why.contains("was lost"), "{why}");
    crate::journal::assert_no_sas(&why);
    // Someone else can take it now.
    assert!(
        third
            .try_acquire("env", &holder("run-c", "apply"))
            .await
            .unwrap()
            .is_ok()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_that_cannot_be_renewed_for_its_duration_is_lost() {
    let mut azurite = Azurite::start();
    let clock = Arc::new(ManualClock::new());
    let a = store_on(&azurite, &container(), &clock);
    let held = a
        .try_acquire("env", &holder("run-a", "apply"))
        .await
        .unwrap()
        .unwrap();
    azurite.stop();
    // 5 s and 10 s: renewal fails, but the lease may still be alive; 15 s: it may not be.
    for _ in 0..2 {
        eventually("the renewal loop to sleep", || clock.waiting() > 0).await;
        clock.advance(Duration::from_secs(5));
    }
    eventually("the renewal loop to sleep", || clock.waiting() > 0).await;
    assert_eq!(held.lost(), None);
    clock.advance(Duration::from_secs(5));
    let why = tokio::time::timeout(Duration::from_secs(30), held.wait_lost())
        .await
        .expect("unrenewable lease not reported lost");
    assert!(why.contains("could not be renewed for 15s"), "{why}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_lock_keys_are_refused_naming_the_key() {
    let clock = Arc::new(ManualClock::new());
    let a = store_on(shared(), &container(), &clock);
    let err = a
        .try_acquire("../etc", &holder("r", "apply"))
        .await
        .err()
        .unwrap();
    assert!(err.to_string().contains("\"../etc\""), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_holding_several_locks_records_them_and_force_unlock_releases_them_all() {
    use fabrik_core::JournalStore;
    let clock = Arc::new(ManualClock::new());
    let name = container();
    let base = store_on(shared(), &name, &clock);
    let keys: Vec<String> = ["sales.dev.a", "sales.dev.b"].map(String::from).to_vec();
    let a = base.for_locks(&keys).unwrap();
    let mut held = Vec::new();
    for k in &keys {
        held.push(
            a.try_acquire(k, &holder("run-a", "apply"))
                .await
                .unwrap()
                .unwrap(),
        );
    }
    let mut journal = a.create("run-a", b"{}\n").await.unwrap();
    journal.close().await.unwrap();
    assert_eq!(
        base.run_lock_keys("run-a").await.unwrap(),
        Some(keys.clone())
    );
    // Another run holds a third workspace of dev, and one of prod.
    let other_dev = base
        .try_acquire("sales.dev.c", &holder("run-b", "apply"))
        .await
        .unwrap()
        .unwrap();
    let prod = base
        .try_acquire("sales.prod.a", &holder("run-c", "apply"))
        .await
        .unwrap()
        .unwrap();
    let mut released = base.force_unlock("run-a").await.unwrap();
    released.sort_by(|x, y| x.0.cmp(&y.0));
    let released: Vec<&str> = released.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(released, ["sales.dev.a", "sales.dev.b"]);
    for k in &keys {
        assert_eq!(base.holder(k).await.unwrap(), None, "{k} was released");
    }
    drop(held);
    assert_eq!(
        base.holder("sales.dev.c").await.unwrap(),
        Some(holder("run-b", "apply"))
    );
    // `--all` for dev: every dev lock, whoever holds it; prod's stays.
    let released = base.force_unlock_under("sales.dev.").await.unwrap();
    assert_eq!(
        released,
        vec![("sales.dev.c".to_owned(), holder("run-b", "apply"))]
    );
    assert_eq!(base.holder("sales.dev.c").await.unwrap(), None);
    drop(other_dev);
    assert_eq!(
        base.holder("sales.prod.a").await.unwrap(),
        Some(holder("run-c", "apply"))
    );
    prod.release().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_with_too_many_locks_to_record_is_read_back_as_every_lock_of_their_prefix() {
    use fabrik_core::JournalStore;
    let clock = Arc::new(ManualClock::new());
    let base = store_on(shared(), &container(), &clock);
    // 80 keys of 100 characters: more than a blob's metadata may hold.
    let keys: Vec<String> = (0..80)
        .map(|i| format!("sales.dev.{i:02}{}", "w".repeat(88)))
        .collect();
    for k in &keys[..3] {
        base.try_acquire(k, &holder("run-x", "apply"))
            .await
            .unwrap()
            .unwrap()
            .release()
            .await
            .unwrap();
    }
    let a = base.for_locks(&keys).unwrap();
    let mut journal = a.create("run-x", b"{}\n").await.unwrap();
    journal.close().await.unwrap();
    assert_eq!(
        base.run_lock_keys("run-x").await.unwrap(),
        Some(keys[..3].to_vec()),
        "the lock blobs under sales.dev. that exist"
    );
}
