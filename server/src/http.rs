//! The HTTP surface: every route Herald answers, assembled in one place.

mod csrf;
mod deadline;
mod deliveries;
pub(crate) mod error;
mod extract;
mod health;
mod limits;
pub mod metrics;
mod notifications;
mod open;
mod openapi;
mod stream;
mod trailing_slash;

pub use limits::Limits;
pub use stream::StreamCounter;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::middleware;
use axum::response::Response;
use axum::routing::get;
use herald_app::router::Page;
use herald_app::shell;
use leptos::prelude::provide_context;
use leptos_axum::{AxumRouteListing, LeptosRoutes};
use leptos_router::{Method, SsrMode};
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;
use tracing::Span;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use error::ApiError;

use crate::startup::AppState;

/// Largest request body the API accepts (Backstage's own limit is larger; 256 KiB is ample
/// for a notification and keeps memory per request small).
pub const BODY_LIMIT: usize = 256 * 1024;

/// Builds the whole router: probes, the REST API, then the Leptos pages and server functions.
pub fn router(state: AppState) -> Router {
    // The API's layers, outermost first: errors in the API's JSON shape, panics answered as
    // errors, the rate limits, and the body's size limit. Each router's layers are applied
    // with one `Router::layer`, as one stack: each call of `Router::layer` boxes the routes
    // again, and every box clones the boxes inside it on every request (ten layers applied
    // one by one cost 55 allocations a request).
    let api_layers = ServiceBuilder::new()
        .layer(middleware::from_fn(error::error_shape))
        .layer(CatchPanicLayer::custom(error::panicked))
        .layer(middleware::from_fn_with_state(state.clone(), limits::limit))
        .layer(DefaultBodyLimit::max(BODY_LIMIT));
    let (api, api_doc) = notifications::router().split_for_parts();
    let api = api
        .merge(notifications::legacy_router())
        .fallback(|| async { ApiError::new(axum::http::StatusCode::NOT_FOUND, "no such API route") })
        .layer(api_layers.clone());
    let (deliveries, deliveries_doc) = deliveries::router().split_for_parts();
    let deliveries = deliveries.layer(api_layers);
    let (operations, operations_doc) = OpenApiRouter::<AppState>::new()
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(metrics::render))
        .split_for_parts();
    let document = Arc::new(openapi::document(api_doc, deliveries_doc, operations_doc));

    let hub = state.hub.clone();
    let context = move || provide_context(hub.clone());
    let leptos_options = state.leptos.clone();
    // The application's pages, rendered whole before they are sent (`SsrMode::Async`): the
    // HTML is complete without JavaScript, and a page can still answer with a redirect or
    // its own status. `leptos_routes_with_context` also registers the server functions.
    let routes = Page::ROUTES
        .iter()
        .map(|(path, _)| AxumRouteListing::new(path.to_string(), SsrMode::Async, [Method::Get], vec![]))
        .collect();

    Router::new()
        .merge(operations)
        .route("/api/openapi.json", get(move || async move { axum::Json(document.as_ref().clone()) }))
        .nest("/api/notifications", api)
        .merge(deliveries)
        .route("/open/{id}", get(open::open))
        .leptos_routes_with_context(&state, routes, context.clone(), {
            let options = leptos_options.clone();
            move || shell(options.clone())
        })
        .fallback(leptos_axum::file_and_error_handler_with_context::<AppState, _>(context, shell))
        .layer(
            // The first layer is the outermost.
            ServiceBuilder::new()
                .layer(
                    TraceLayer::new_for_http()
                        .make_span_with(|req: &Request| {
                            tracing::info_span!(
                                "request",
                                method = %req.method(),
                                path = %req.uri().path(),
                                status = tracing::field::Empty,
                                latency_ms = tracing::field::Empty,
                            )
                        })
                        .on_request(())
                        .on_response(|res: &Response, latency: Duration, span: &Span| {
                            span.record("status", res.status().as_u16());
                            span.record("latency_ms", latency.as_secs_f64() * 1000.0);
                            tracing::debug!(
                                status = res.status().as_u16(),
                                latency_ms = latency.as_secs_f64() * 1000.0,
                                "response"
                            );
                        })
                        .on_failure(()),
                )
                .layer(middleware::from_fn(metrics::track))
                .layer(middleware::from_fn_with_state(state.clone(), deadline::body_deadline))
                .layer(middleware::from_fn_with_state(state.clone(), csrf::check))
                .layer(middleware::from_fn(trailing_slash::redirect))
                // Inside the other layers, so that a panic's 500 is measured and logged like
                // any answer (the API's routers catch their own first, inside `error_shape`,
                // which then names the request in the body).
                .layer(CatchPanicLayer::custom(error::panicked)),
        )
        .with_state(state)
}
