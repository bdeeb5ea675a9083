//! The client over HTTPS to the emulator, trusting only the emulator's generated CA.

use std::time::Duration;

use fabrik_client::{FabricClient, StaticTokenProvider};
use fabrik_emulator::{Emulator, EmulatorConfig, TlsConfig};
use futures::TryStreamExt;
use std::sync::Arc;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_works_with_the_extra_ca_and_fails_without_it() {
    let emu = Emulator::start(EmulatorConfig {
        tls: Some(TlsConfig {
            port: 0,
            ca_out: None,
        }),
        ..Default::default()
    })
    .await
    .unwrap();
    let token = emu.mint_token(
        "9117cbfa-f0a7-43b7-846f-96ba66a3c1c0",
        Duration::from_secs(600),
    );
    let base = format!("{}/v1", emu.tls_base_url().unwrap());
    let build = |ca: Option<&str>| {
        let mut b = FabricClient::builder(base.clone()).token_provider(Arc::new(
            StaticTokenProvider::never_expiring(token.clone().into()),
        ));
        if let Some(pem) = ca {
            b = b.extra_root_certificate_pem(pem.as_bytes().to_vec());
        }
        b.build().unwrap()
    };
    let trusted = build(emu.ca_pem());
    let caps: Vec<_> = trusted.list_capacities().try_collect().await.unwrap();
    assert!(!caps.is_empty());

    let untrusted = build(None);
    let err = untrusted
        .list_capacities()
        .try_collect::<Vec<_>>()
        .await
        .unwrap_err();
    assert!(
        err.status().is_none(),
        "a TLS failure, not an HTTP answer: {err}"
    );

    assert!(
        FabricClient::builder(base.clone())
            .token_provider(Arc::new(StaticTokenProvider::never_expiring(
                token.clone().into()
            )))
            .extra_root_certificate_pem(b"not a certificate".to_vec())
            .build()
            .is_err()
    );
    emu.shutdown().await.unwrap();
}
