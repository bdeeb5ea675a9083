//! Folders (nested, with their rules) and git integration with coherent state.

use serde_json::{Value, json};

use crate::common::Env;

#[tokio::test]
async fn folders_nest_move_and_keep_their_rules() {
    let env = Env::start().await;
    let ws = env.workspace("Folders", false).await;
    let base = format!("/v1/workspaces/{ws}/folders");
    let envr = &env;
    let create = |name: String, parent: Option<String>| {
        let base = base.clone();
        async move {
            let mut body = json!({"displayName": name});
            if let Some(p) = parent {
                body["parentFolderId"] = json!(p);
            }
            envr.post(&base, body).await
        }
    };
    let a = create("A".into(), None).await.expect(201).body["id"]
        .as_str()
        .unwrap()
        .to_string();
    let b = create("B".into(), Some(a.clone())).await.expect(201);
    assert_eq!(b.body["parentFolderId"], a);
    let b = b.body["id"].as_str().unwrap().to_string();
    assert_eq!(
        create("a".into(), None).await.expect(409).error_code(),
        "FolderDisplayNameAlreadyInUse"
    );
    create("A".into(), Some(a.clone())).await.expect(201); // same name, other parent
    for bad in [
        "",
        " lead",
        "trail ",
        "a/b",
        "dot.name",
        "x?",
        &"n".repeat(256),
    ] {
        assert_eq!(
            create(bad.into(), None).await.expect(400).error_code(),
            "InvalidFolderDisplayName",
            "{bad:?}"
        );
    }
    let missing = create(
        "C".into(),
        Some("00000000-0000-4000-8000-000000000000".into()),
    )
    .await
    .expect(404);
    assert_eq!(missing.error_code(), "FolderNotFound");

    // Ten levels deep at most.
    let mut parent = b.clone();
    for level in 3..=10 {
        parent = create(format!("L{level}"), Some(parent))
            .await
            .expect(201)
            .body["id"]
            .as_str()
            .unwrap()
            .to_string();
    }
    assert_eq!(
        create("L11".into(), Some(parent.clone()))
            .await
            .expect(400)
            .error_code(),
        "FolderDepthOutOfRange"
    );

    // Listing: recursive by default, or one level under a root.
    let all = env.get(&base).await.expect(200).body["value"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(all, 11);
    let top = env
        .get(&format!("{base}?recursive=false"))
        .await
        .expect(200);
    assert_eq!(top.body["value"].as_array().unwrap().len(), 1);
    let under_a = env
        .get(&format!("{base}?rootFolderId={a}&recursive=false"))
        .await
        .expect(200);
    assert_eq!(under_a.body["value"].as_array().unwrap().len(), 2);

    // Moves: never into its own subtree; the root is a valid target.
    let lp = env
        .post(
            &format!("{base}/{a}/move"),
            json!({"targetFolderId": parent}),
        )
        .await
        .expect(400);
    assert_eq!(lp.error_code(), "InfiniteFolderHierarchyLoop");
    let moved = env
        .post(&format!("{base}/{b}/move"), json!({}))
        .await
        .expect(200);
    assert!(moved.body.get("parentFolderId").is_none());
    let renamed = env
        .patch(&format!("{base}/{b}"), json!({"displayName": "B2"}))
        .await
        .expect(200);
    assert_eq!(renamed.body["displayName"], "B2");

    // Items move between folders; a folder with content cannot be deleted.
    let item = env
        .post(
            &format!("/v1/workspaces/{ws}/items"),
            json!({"displayName": "R", "type": "Report", "folderId": a}),
        )
        .await
        .expect(201);
    let iid = item.body["id"].as_str().unwrap().to_string();
    assert_eq!(item.body["folderId"], a);
    let in_a = env
        .get(&format!("/v1/workspaces/{ws}/items?rootFolderId={a}"))
        .await
        .expect(200);
    assert_eq!(in_a.body["value"].as_array().unwrap().len(), 1);
    let a_child = env
        .get(&format!("{base}?rootFolderId={a}&recursive=false"))
        .await
        .body["value"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    env.delete(&format!("{base}/{a_child}")).await.expect(200);
    assert_eq!(
        env.delete(&format!("{base}/{a}"))
            .await
            .expect(400)
            .error_code(),
        "FolderNotEmpty"
    );
    let mv = env
        .post(
            &format!("/v1/workspaces/{ws}/items/{iid}/move"),
            json!({"targetFolderId": b}),
        )
        .await
        .expect(200);
    assert_eq!(mv.body["value"][0]["folderId"], b);
    env.delete(&format!("{base}/{a}")).await.expect(200);
    assert_eq!(
        env.get(&format!("{base}/{a}"))
            .await
            .expect(404)
            .error_code(),
        "FolderNotFound"
    );
}

async fn connect(env: &Env, ws: &str, repo: &str) {
    env.post(&format!("/v1/workspaces/{ws}/git/connect"), json!({
        "gitProviderDetails": {"gitProviderType": "AzureDevOps", "organizationName": "org", "projectName": "proj", "repositoryName": repo, "branchName": "main", "directoryName": "/fabric"}
    })).await.expect(200);
}

async fn status(env: &Env, ws: &str) -> Value {
    env.finish(env.get(&format!("/v1/workspaces/{ws}/git/status")).await)
        .await
        .1
        .expect("status result")
}

#[tokio::test]
async fn git_connect_commit_edit_and_update_another_workspace() {
    let env = Env::start().await;
    let dev = env.workspace("Dev", true).await;
    let git = format!("/v1/workspaces/{dev}/git");

    // Preconditions and errors from the spec.
    let no_cap = env.workspace("NoCap", false).await;
    let r = env.post(&format!("/v1/workspaces/{no_cap}/git/connect"), json!({"gitProviderDetails": {"gitProviderType": "GitHub", "ownerName": "o", "repositoryName": "r", "branchName": "b", "directoryName": "/"}, "myGitCredentials": {"source": "Automatic"}})).await;
    assert_eq!(r.expect(400).error_code(), "WorkspaceHasNoCapacityAssigned");
    assert_eq!(
        env.post_empty(&format!("{git}/disconnect"))
            .await
            .expect(400)
            .error_code(),
        "WorkspaceNotConnectedToGit"
    );
    assert_eq!(
        env.get(&format!("{git}/status"))
            .await
            .expect(400)
            .error_code(),
        "WorkspaceNotConnectedToGit"
    );
    let nc = env.get(&format!("{git}/connection")).await.expect(200);
    assert_eq!(
        nc.body,
        json!({"gitProviderDetails": null, "gitSyncDetails": null, "gitConnectionState": "NotConnected"})
    );
    let long = env.post(&format!("{git}/connect"), json!({"gitProviderDetails": {"gitProviderType": "AzureDevOps", "organizationName": "o", "projectName": "p", "repositoryName": "r".repeat(129), "branchName": "main", "directoryName": "/"}})).await;
    assert_eq!(long.expect(400).error_code(), "InvalidInput");

    let nb = env
        .post(
            &format!("/v1/workspaces/{dev}/notebooks"),
            json!({"displayName": "Nb"}),
        )
        .await
        .expect(201)
        .body["id"]
        .as_str()
        .unwrap()
        .to_string();
    connect(&env, &dev, "repo").await;
    assert_eq!(env.post(&format!("{git}/connect"), json!({"gitProviderDetails": {"gitProviderType": "AzureDevOps", "organizationName": "org", "projectName": "proj", "repositoryName": "repo", "branchName": "main", "directoryName": "/fabric"}})).await.expect(409).error_code(), "WorkspaceAlreadyConnectedToGit");
    let c = env.get(&format!("{git}/connection")).await.expect(200).body;
    assert_eq!(c["gitConnectionState"], "Connected");
    assert_eq!(c["gitProviderDetails"]["repositoryName"], "repo");

    let (_, init) = env
        .finish(env.post_empty(&format!("{git}/initializeConnection")).await)
        .await;
    let init = init.unwrap();
    assert_eq!(init["requiredAction"], "CommitToGit");
    let st = status(&env, &dev).await;
    assert_eq!(st["changes"].as_array().unwrap().len(), 1);
    assert_eq!(st["changes"][0]["workspaceChange"], "Added");
    assert_eq!(
        st["changes"][0]["itemMetadata"]["itemIdentifier"]["objectId"],
        nb
    );
    let wrong = env
        .post(
            &format!("{git}/commitToGit"),
            json!({"mode": "All", "workspaceHead": "0".repeat(40)}),
        )
        .await;
    assert_eq!(wrong.expect(400).error_code(), "WorkspaceHeadMismatch");
    env.finish(
        env.post(
            &format!("{git}/commitToGit"),
            json!({"mode": "All", "workspaceHead": st["workspaceHead"], "comment": "first"}),
        )
        .await,
    )
    .await;
    let st2 = status(&env, &dev).await;
    assert_eq!(st2["changes"], json!([]));
    assert_ne!(st2["workspaceHead"], st["workspaceHead"]);
    assert_eq!(st2["workspaceHead"], st2["remoteCommitHash"]);
    let c = env.get(&format!("{git}/connection")).await.expect(200).body;
    assert_eq!(c["gitConnectionState"], "ConnectedAndInitialized");
    assert_eq!(c["gitSyncDetails"]["head"], st2["workspaceHead"]);
    assert_eq!(
        env.post(&format!("{git}/commitToGit"), json!({"mode": "All"}))
            .await
            .expect(400)
            .error_code(),
        "NoChangesToCommit"
    );

    // An edit shows up as a workspace change.
    env.patch(
        &format!("/v1/workspaces/{dev}/items/{nb}"),
        json!({"description": "edited"}),
    )
    .await
    .expect(200);
    let st3 = status(&env, &dev).await;
    assert_eq!(st3["changes"][0]["workspaceChange"], "Modified");
    assert_eq!(st3["changes"][0]["conflictType"], "None");
    env.finish(
        env.post(
            &format!("{git}/commitToGit"),
            json!({"mode": "Selective", "items": [{"objectId": nb}]}),
        )
        .await,
    )
    .await;

    // A second workspace on the same branch gets the item through updateFromGit.
    let prod = env.workspace("Prod", true).await;
    connect(&env, &prod, "repo").await;
    let (_, init) = env
        .finish(
            env.post(
                &format!("/v1/workspaces/{prod}/git/initializeConnection"),
                json!({"initializationStrategy": "PreferRemote"}),
            )
            .await,
        )
        .await;
    let init = init.unwrap();
    assert_eq!(init["requiredAction"], "UpdateFromGit");
    assert!(init.get("workspaceHead").is_none());
    let pst = status(&env, &prod).await;
    assert_eq!(pst["changes"][0]["remoteChange"], "Added");
    let bad = env
        .post(
            &format!("/v1/workspaces/{prod}/git/updateFromGit"),
            json!({"remoteCommitHash": "f".repeat(40)}),
        )
        .await;
    assert_eq!(bad.expect(400).error_code(), "InvalidRemoteCommitHash");
    env.finish(env.post(&format!("/v1/workspaces/{prod}/git/updateFromGit"), json!({"remoteCommitHash": pst["remoteCommitHash"], "options": {"allowOverrideItems": true}})).await).await;
    let prod_items = env.get(&format!("/v1/workspaces/{prod}/items")).await.body;
    assert_eq!(prod_items["value"][0]["displayName"], "Nb");
    assert_eq!(prod_items["value"][0]["description"], "edited");
    assert_eq!(status(&env, &prod).await["changes"], json!([]));

    // Both sides edit the same item: a conflict that needs a resolution.
    env.patch(
        &format!("/v1/workspaces/{dev}/items/{nb}"),
        json!({"description": "dev change"}),
    )
    .await
    .expect(200);
    env.finish(
        env.post(&format!("{git}/commitToGit"), json!({"mode": "All"}))
            .await,
    )
    .await;
    let prod_nb = prod_items["value"][0]["id"].as_str().unwrap();
    env.patch(
        &format!("/v1/workspaces/{prod}/items/{prod_nb}"),
        json!({"description": "prod change"}),
    )
    .await
    .expect(200);
    let pst = status(&env, &prod).await;
    assert_eq!(pst["changes"][0]["conflictType"], "Conflict");
    let r = env.post(&format!("/v1/workspaces/{prod}/git/updateFromGit"), json!({"workspaceHead": pst["workspaceHead"], "remoteCommitHash": pst["remoteCommitHash"]})).await;
    assert_eq!(r.expect(409).error_code(), "GitConflictResolutionRequired");
    env.finish(env.post(&format!("/v1/workspaces/{prod}/git/updateFromGit"), json!({
        "workspaceHead": pst["workspaceHead"], "remoteCommitHash": pst["remoteCommitHash"],
        "conflictResolution": {"conflictResolutionType": "Workspace", "conflictResolutionPolicy": "PreferRemote"},
        "options": {"allowOverrideItems": true}
    })).await).await;
    assert_eq!(
        env.get(&format!("/v1/workspaces/{prod}/items/{prod_nb}"))
            .await
            .body["description"],
        "dev change"
    );

    // Credentials and disconnect.
    assert_eq!(
        env.get(&format!("{git}/myGitCredentials"))
            .await
            .expect(200)
            .body,
        json!({"source": "Automatic"})
    );
    let cred = env.patch(&format!("{git}/myGitCredentials"), json!({"source": "ConfiguredConnection", "connectionId": "3f2504e0-4f89-41d3-9a0c-0305e82c3301"})).await.expect(200);
    assert_eq!(cred.body["source"], "ConfiguredConnection");
    env.post_empty(&format!("{git}/disconnect"))
        .await
        .expect(200);
    assert_eq!(
        env.get(&format!("{git}/connection")).await.body["gitConnectionState"],
        "NotConnected"
    );
    // The remote keeps its commits for the other workspace.
    let state = env.get("/_emulator/state").await.body;
    assert_eq!(state["gitRemotes"].as_object().unwrap().len(), 1);
}
