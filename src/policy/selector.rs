//! Kubernetes label selectors (`matchLabels` and `matchExpressions`) over namespace labels.
//!
//! Validated here, with the field at fault and a message a policy author can act on (kube's
//! own conversion accepts `In` without values and drops the values of `Exists`); matched by
//! kube's [`kube::core::Selector`].

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::core::{Expression, SelectorExt as _};

/// Labels of the namespace a workload is admitted into.
pub type Labels = BTreeMap<String, String>;

/// A validated selector.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Selector(kube::core::Selector);

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
            requirements.push(Expression::Equal(k.clone(), v.clone()));
        }
        for (i, expr) in selector.match_expressions.iter().flatten().enumerate() {
            let field = format!("matchExpressions[{i}]");
            let values = expr.values.clone().unwrap_or_default();
            let key = expr.key.clone();
            let needs_values = |r: Expression| {
                if values.is_empty() {
                    Err(SelectorError {
                        field: field.clone(),
                        message: format!("operator {} needs values", expr.operator),
                    })
                } else {
                    Ok(r)
                }
            };
            let no_values = |r: Expression| {
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
                "In" => needs_values(Expression::In(key, BTreeSet::from_iter(values.clone())))?,
                "NotIn" => needs_values(Expression::NotIn(key, BTreeSet::from_iter(values.clone())))?,
                "Exists" => no_values(Expression::Exists(key))?,
                "DoesNotExist" => no_values(Expression::DoesNotExist(key))?,
                other => {
                    return Err(SelectorError {
                        field: format!("{field}.operator"),
                        message: format!("unknown operator {other:?} (In, NotIn, Exists, DoesNotExist)"),
                    })
                }
            });
        }
        Ok(Selector(requirements.into_iter().collect()))
    }

    /// Does a namespace with these labels match?
    pub fn matches(&self, labels: &Labels) -> bool {
        self.0.matches(labels)
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
