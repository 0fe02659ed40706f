//! The deployment: its regions and whether each serves, the version, and
//! this region's traffic over the last minute.

use http::Response;
use maud::html;
use s3s::Body;

use crate::Console;
use crate::html::{self, Section};
use crate::session::Session;

pub async fn show(console: &Console, session: &Session) -> Response<Body> {
    let health = futures::future::join_all(console.clients.endpoints().map(|(name, endpoint)| async move {
        let url = format!("{endpoint}/_tern/health");
        let answer = console.clients.plain_http.get(&url).send().await;
        let state = match answer {
            Ok(r) if r.status().is_success() => ("serving", "good"),
            Ok(_) => ("not ready", "bad"),
            Err(_) => ("unreachable", "bad"),
        };
        (name.to_owned(), endpoint.to_owned(), state)
    }))
    .await;
    let summary = console.traffic.summary();
    let content = html! {
        table {
            caption { "Regions" }
            thead { tr { th scope="col" { "Region" } th scope="col" { "Endpoint" } th scope="col" { "State" } } }
            tbody {
                @for (name, endpoint, (state, class)) in &health {
                    tr {
                        td { (name) @if *name == console.region { " (this console)" } }
                        td.mono { (endpoint) }
                        td class=(class) { (state) }
                    }
                }
            }
        }
        p { "Tern " (env!("CARGO_PKG_VERSION")) ", signed in as " span.mono { (session.principal) } "." }
        h2 { "Traffic of " (console.region) }
        @match &summary {
            None => p.muted { "Measured every few seconds: reload in a moment." }
            Some(summary) => {
                table {
                    caption { "Requests per second over the last " (format!("{:.0}", summary.seconds)) " s" }
                    thead { tr { th scope="col" { "Service" } th scope="col" { "Requests/s" } } }
                    tbody {
                        @for (service, rate) in &summary.rates {
                            tr { td { (service) } td { (format!("{rate:.2}")) } }
                        }
                    }
                }
                @if let Some([p50, p90, p99]) = summary.percentiles {
                    p { "Latency to the response head: p50 ≤ " (millis(p50)) ", p90 ≤ " (millis(p90)) ", p99 ≤ " (millis(p99)) "." }
                } @else {
                    p.muted { "No requests in that time." }
                }
            }
        }
    };
    html::page(session, &console.region, Some(Section::Overview), "Deployment", &content)
}

fn millis(seconds: f64) -> String {
    if seconds.is_finite() { format!("{:.2} ms", seconds * 1000.0) } else { "more than the largest bucket".to_owned() }
}
