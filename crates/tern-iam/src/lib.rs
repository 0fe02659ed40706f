//! Identities and authorization: the IAM policy language and its evaluator
//! ([`policy`]), and, built on it, the deployment's users, roles, access keys
//! and STS sessions.

pub mod policy;
