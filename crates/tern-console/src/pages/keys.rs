//! KMS keys of every region, and multi-Region keys as the families they
//! are: one key id, a primary in one region, replicas in others.

use std::collections::BTreeMap;

use aws_sdk_kms::types::KeyMetadata;
use http::Response;
use maud::{Markup, html};
use s3s::Body;

use super::sdk_error;
use crate::Console;
use crate::clients::RegionClients;
use crate::html::{self, Section};
use crate::session::Session;

/// Keys a region page shows (and describes, one call each).
const SHOWN: i32 = 100;

/// One region's keys with their aliases, or why it would not list them.
struct RegionKeys {
    region: String,
    keys: Result<Vec<(KeyMetadata, Vec<String>)>, String>,
}

pub async fn list(console: &Console, session: &Session) -> Response<Body> {
    let regions = futures::future::join_all(session.clients.regions.iter().map(region_keys)).await;
    let content = html! {
        (families(&regions))
        @for r in &regions { (region_table(r)) }
    };
    html::page(session, &console.region, Some(Section::Keys), "KMS keys", &content)
}

async fn region_keys(clients: &RegionClients) -> RegionKeys {
    let region = clients.name.clone();
    let listed = match clients.kms.list_keys().limit(SHOWN).send().await {
        Ok(listed) => listed,
        Err(e) => return RegionKeys { region, keys: Err(sdk_error(&e)) },
    };
    let aliases = clients.kms.list_aliases().send().await.map(|a| a.aliases().to_vec()).unwrap_or_default();
    let described = futures::future::join_all(
        listed.keys().iter().filter_map(|k| k.key_id()).map(|id| clients.kms.describe_key().key_id(id).send()),
    )
    .await;
    let keys = described
        .into_iter()
        .filter_map(|d| d.ok()?.key_metadata().cloned())
        .map(|meta| {
            let names = aliases
                .iter()
                .filter(|a| a.target_key_id() == Some(meta.key_id()))
                .filter_map(|a| a.alias_name().map(str::to_owned))
                .collect();
            (meta, names)
        })
        .collect();
    RegionKeys { region, keys: Ok(keys) }
}

fn region_table(r: &RegionKeys) -> Markup {
    html! {
        h2 { (r.region) }
        @match &r.keys {
            Err(why) => (html::refusal("ListKeys", why)),
            Ok(keys) => table {
                caption { "Keys in " (r.region) }
                thead { tr {
                    th scope="col" { "Key" } th scope="col" { "Aliases" } th scope="col" { "State" }
                    th scope="col" { "Multi-Region" } th scope="col" { "Managed by" } th scope="col" { "Description" }
                } }
                tbody {
                    @for (meta, aliases) in keys {
                        tr {
                            td.mono { (meta.arn().unwrap_or(meta.key_id())) }
                            td.mono { (aliases.join(", ")) }
                            td { (meta.key_state().map_or("", |s| s.as_str())) }
                            td { (meta.multi_region_configuration().and_then(|m| m.multi_region_key_type()).map_or("no", |t| t.as_str())) }
                            td { (meta.key_manager().map_or("", |m| m.as_str())) }
                            td { (meta.description().unwrap_or_default()) }
                        }
                    }
                }
            },
        }
    }
}

/// A multi-Region key's primary region, and (region, state) where it is held.
type Family<'a> = (Option<&'a str>, Vec<(&'a str, &'a str)>);

/// Every multi-Region key id seen, with its state in each region that
/// holds it and the primary the key names.
fn families(regions: &[RegionKeys]) -> Markup {
    let mut families: BTreeMap<&str, Family<'_>> = BTreeMap::new();
    for r in regions {
        for (meta, _) in r.keys.as_ref().map(Vec::as_slice).unwrap_or_default() {
            let Some(config) = meta.multi_region_configuration() else { continue };
            let family = families.entry(meta.key_id()).or_default();
            family.0 = config.primary_key().and_then(|p| p.region()).or(family.0);
            family.1.push((&r.region, meta.key_state().map_or("", |s| s.as_str())));
        }
    }
    html! {
        table {
            caption { "Multi-Region key families" }
            thead { tr { th scope="col" { "Key id" } th scope="col" { "Primary" } th scope="col" { "Held in (state)" } } }
            tbody {
                @for (id, (primary, held)) in &families {
                    tr {
                        td.mono { (id) }
                        td { (primary.unwrap_or("?")) }
                        td { @for (region, state) in held { (region) " (" (state) ") " } }
                    }
                }
                @if families.is_empty() { tr { td colspan="3" { span.muted { "None." } } } }
            }
        }
    }
}
