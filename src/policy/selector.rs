//! Kubernetes label selectors (`matchLabels` and `matchExpressions`) over namespace labels.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

/// Labels of the namespace a workload is admitted into.
pub type Labels = BTreeMap<String, String>;

/// A validated selector.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Selector {
    requirements: Vec<Requirement>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Requirement {
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    DoesNotExist(String),
}

/// Why a selector is not valid, with the field at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct SelectorError {
    pub field: String,
    pub message: String,
}

impl Selector {
    /// Validates a `LabelSelector`; an absent or empty one selects everything.
    pub fn new(selector: Option<&LabelSelector>) -> Result<Self, SelectorError> {
        let Some(selector) = selector else { return Ok(Selector::default()) };
        let mut requirements = Vec::new();
        for (k, v) in selector.match_labels.iter().flatten() {
            requirements.push(Requirement::In(k.clone(), vec![v.clone()]));
        }
        for (i, expr) in selector.match_expressions.iter().flatten().enumerate() {
            let field = format!("matchExpressions[{i}]");
            let values = expr.values.clone().unwrap_or_default();
            let key = expr.key.clone();
            let needs_values = |r: Requirement| {
                if values.is_empty() {
                    Err(SelectorError {
                        field: field.clone(),
                        message: format!("operator {} needs values", expr.operator),
                    })
                } else {
                    Ok(r)
                }
            };
            let no_values = |r: Requirement| {
                if values.is_empty() {
                    Ok(r)
                } else {
                    Err(SelectorError {
                        field: field.clone(),
                        message: format!("operator {} takes no values", expr.operator),
                    })
                }
            };
            requirements.push(match expr.operator.as_str() {
                "In" => needs_values(Requirement::In(key, values.clone()))?,
                "NotIn" => needs_values(Requirement::NotIn(key, values.clone()))?,
                "Exists" => no_values(Requirement::Exists(key))?,
                "DoesNotExist" => no_values(Requirement::DoesNotExist(key))?,
                other => {
                    return Err(SelectorError {
                        field: format!("{field}.operator"),
                        message: format!("unknown operator {other:?} (In, NotIn, Exists, DoesNotExist)"),
                    })
                }
            });
        }
        Ok(Selector { requirements })
    }

    /// Does a namespace with these labels match?
    pub fn matches(&self, labels: &Labels) -> bool {
        self.requirements.iter().all(|r| match r {
            Requirement::In(k, vs) => labels.get(k).is_some_and(|v| vs.contains(v)),
            Requirement::NotIn(k, vs) => labels.get(k).is_none_or(|v| !vs.contains(v)),
            Requirement::Exists(k) => labels.contains_key(k),
            Requirement::DoesNotExist(k) => !labels.contains_key(k),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn expr(key: &str, op: &str, values: &[&str]) -> LabelSelectorRequirement {
        LabelSelectorRequirement {
            key: key.into(),
            operator: op.into(),
            values: (!values.is_empty()).then(|| values.iter().map(|s| s.to_string()).collect()),
        }
    }

    #[test]
    fn absent_selector_matches_every_namespace() {
        assert!(Selector::new(None).unwrap().matches(&labels(&[])));
        assert!(Selector::new(Some(&LabelSelector::default())).unwrap().matches(&labels(&[("a", "b")])));
    }

    #[test]
    fn match_labels_and_expressions_all_apply() {
        let sel = LabelSelector {
            match_labels: Some([("env".to_string(), "prod".to_string())].into()),
            match_expressions: Some(vec![
                expr("team", "In", &["payments", "billing"]),
                expr("tier", "NotIn", &["sandbox"]),
                expr("owner", "Exists", &[]),
                expr("trustgate.dev/ignore", "DoesNotExist", &[]),
            ]),
        };
        let s = Selector::new(Some(&sel)).unwrap();
        let base = [("env", "prod"), ("team", "payments"), ("owner", "x")];
        assert!(s.matches(&labels(&base)));
        assert!(!s.matches(&labels(&[("env", "dev"), ("team", "payments"), ("owner", "x")])));
        assert!(!s.matches(&labels(&[("env", "prod"), ("team", "web"), ("owner", "x")])));
        assert!(!s.matches(&labels(&[("env", "prod"), ("team", "payments")])));
        assert!(!s.matches(&labels(&[("env", "prod"), ("team", "payments"), ("owner", "x"), ("tier", "sandbox")])));
        assert!(!s.matches(&labels(&[
            ("env", "prod"),
            ("team", "payments"),
            ("owner", "x"),
            ("trustgate.dev/ignore", "true")
        ])));
    }

    #[test]
    fn invalid_expressions_name_the_field() {
        let bad = |e| Selector::new(Some(&LabelSelector { match_expressions: Some(vec![e]), ..Default::default() }));
        assert_eq!(bad(expr("a", "Like", &["x"])).unwrap_err().field, "matchExpressions[0].operator");
        assert_eq!(bad(expr("a", "In", &[])).unwrap_err().message, "operator In needs values");
        assert_eq!(bad(expr("a", "Exists", &["x"])).unwrap_err().message, "operator Exists takes no values");
    }
}
