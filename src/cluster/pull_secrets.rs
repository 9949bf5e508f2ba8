//! Registry credentials from the cluster, as the kubelet would use them: the Pod's
//! `imagePullSecrets` and those of its service account.
//!
//! Secrets and service accounts are read on demand and kept for [`TTL`], so a burst of
//! admissions in one namespace costs a few API calls, and a rotated secret is seen soon.
//! A secret that cannot be read is logged and skipped: the registry then answers
//! "unauthorised", which is the message a developer can act on.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use kube::{Api, Client};
use moka::future::Cache;
use serde_json::Value;

use crate::evidence::Credentials;

/// How long a read Secret or ServiceAccount is reused.
pub const TTL: Duration = Duration::from_secs(30);

/// Reads pull secrets through the API server.
#[derive(Clone)]
pub struct PullSecrets {
    client: Client,
    secrets: Cache<(String, String), Arc<Credentials>>,
    accounts: Cache<(String, String), Arc<Vec<String>>>,
}

impl std::fmt::Debug for PullSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PullSecrets").field("cached_secrets", &self.secrets.entry_count()).finish()
    }
}

/// The names listed under `imagePullSecrets` of a pod spec or service account.
fn names(list: Option<&Value>) -> Vec<String> {
    list.and_then(Value::as_array)
        .map(|l| l.iter().filter_map(|s| s.get("name").and_then(Value::as_str)).map(str::to_owned).collect())
        .unwrap_or_default()
}

impl PullSecrets {
    pub fn new(client: Client) -> Self {
        PullSecrets {
            client,
            secrets: Cache::builder().max_capacity(10_000).time_to_live(TTL).build(),
            accounts: Cache::builder().max_capacity(10_000).time_to_live(TTL).build(),
        }
    }

    /// The credentials a pod with `pod_spec` in `namespace` pulls with; the pod's own
    /// secrets win over its service account's for a host both name.
    pub async fn credentials(&self, namespace: &str, pod_spec: &Value) -> Credentials {
        let account = pod_spec.get("serviceAccountName").and_then(Value::as_str).unwrap_or("default");
        let mut secret_names = self.account_secrets(namespace, account).await.to_vec();
        secret_names.extend(names(pod_spec.get("imagePullSecrets")));
        let mut credentials = Credentials::default();
        for name in secret_names {
            credentials.extend((*self.secret(namespace, &name).await).clone());
        }
        credentials
    }

    async fn account_secrets(&self, namespace: &str, account: &str) -> Arc<Vec<String>> {
        let key = (namespace.to_owned(), account.to_owned());
        self.accounts
            .get_with(key, async {
                let api = Api::<ServiceAccount>::namespaced(self.client.clone(), namespace);
                match api.get_opt(account).await {
                    Ok(Some(sa)) => {
                        Arc::new(sa.image_pull_secrets.unwrap_or_default().into_iter().map(|r| r.name).collect())
                    }
                    Ok(None) => Arc::default(),
                    Err(e) => {
                        tracing::warn!(namespace, account, error = %e, "reading the service account's pull secrets");
                        Arc::default()
                    }
                }
            })
            .await
    }

    async fn secret(&self, namespace: &str, name: &str) -> Arc<Credentials> {
        let key = (namespace.to_owned(), name.to_owned());
        self.secrets
            .get_with(key, async {
                let api = Api::<Secret>::namespaced(self.client.clone(), namespace);
                let secret = match api.get_opt(name).await {
                    Ok(Some(s)) => s,
                    Ok(None) => {
                        tracing::warn!(namespace, secret = name, "pull secret not found");
                        return Arc::default();
                    }
                    Err(e) => {
                        tracing::warn!(namespace, secret = name, error = %e, "reading a pull secret");
                        return Arc::default();
                    }
                };
                let data = secret.data.unwrap_or_default();
                let found = [".dockerconfigjson", ".dockercfg"]
                    .into_iter()
                    .find_map(|k| data.get(k).map(|v| Credentials::from_pull_secret(k, &v.0)));
                match found {
                    Some(Ok(c)) => Arc::new(c),
                    Some(Err(e)) => {
                        tracing::warn!(namespace, secret = name, error = %e, "unreadable pull secret");
                        Arc::default()
                    }
                    None => Arc::default(),
                }
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pull_secret_names_come_from_the_pod_spec() {
        let spec = json!({"imagePullSecrets": [{"name": "a"}, {"name": "b"}, {}]});
        assert_eq!(names(spec.get("imagePullSecrets")), ["a", "b"]);
        assert!(names(None).is_empty());
    }
}
