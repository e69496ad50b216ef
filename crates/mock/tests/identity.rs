//! The mock names its organization and environment on every API answer, as Persona does
//! (`Persona-Organization-Id`, `Persona-Environment-Id`): fixed per instance, overridable.

use personafs_mock::{MockConfig, MockServer, RuntimeConfig};

const KEY: &str = "persona_sandbox_identity";

/// The two ids on an answer to `GET path` with `key`, and its status.
async fn ids(mock: &MockServer, path: &str, key: &str) -> (u16, Option<String>, Option<String>) {
    let resp = reqwest::Client::new()
        .get(format!("{}{path}", mock.api_base()))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let org = header("persona-organization-id");
    let env = header("persona-environment-id");
    (resp.status().as_u16(), org, env)
}

#[tokio::test]
async fn every_api_answer_names_the_organization_and_environment() {
    let config = MockConfig {
        api_key: KEY.into(),
        generate: 2,
        seed: 7,
        runtime: RuntimeConfig {
            rate_limit: 3,
            ..MockConfig::default().runtime
        },
        ..MockConfig::default()
    };
    let (org, env) = config.identity();
    assert!(
        org.starts_with("org_") && env.starts_with("env_"),
        "{org} {env}"
    );
    let mock = MockServer::start(config).unwrap();
    // A listing, a missing inquiry, a refused key, then the rate limit: all carry both ids.
    let mut statuses = Vec::new();
    for (path, key) in [
        ("/inquiries", KEY),
        ("/inquiries/inq_missing", KEY),
        ("/inquiries", "persona_sandbox_wrong"),
        ("/inquiries", KEY),
        ("/inquiries", KEY),
    ] {
        let (status, o, e) = ids(&mock, path, key).await;
        assert_eq!(o.as_deref(), Some(org.as_str()), "{path} {status}");
        assert_eq!(e.as_deref(), Some(env.as_str()), "{path} {status}");
        statuses.push(status);
    }
    assert_eq!(statuses, [200, 404, 401, 200, 429]);
}

#[tokio::test]
async fn ids_are_fixed_by_the_seed_and_can_be_set() {
    let a = MockConfig {
        seed: 1,
        ..MockConfig::default()
    };
    let b = MockConfig {
        seed: 2,
        ..MockConfig::default()
    };
    assert_eq!(a.identity(), a.clone().identity());
    assert_ne!(a.identity().0, b.identity().0);
    let set = MockConfig {
        api_key: KEY.into(),
        organization_id: Some("org_SECOND".into()),
        environment_id: Some("env_SECOND".into()),
        ..MockConfig::default()
    };
    let mock = MockServer::start(set).unwrap();
    let (status, o, e) = ids(&mock, "/inquiries", KEY).await;
    assert_eq!(status, 200);
    assert_eq!(o.as_deref(), Some("org_SECOND"));
    assert_eq!(e.as_deref(), Some("env_SECOND"));
}
