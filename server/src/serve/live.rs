//! Live streams served on a lean connection path, without hyper.
//!
//! An open event stream is idle nearly all of its life, and ten thousand of them must fit in a
//! small server. hyper keeps, for every connection, a read buffer of at least 8 KiB and a
//! write buffer that grows to hold the response head, for as long as the connection lives:
//! about 16 KiB per idle stream before Herald's own state. So a connection whose *first*
//! request is `GET /api/notifications/stream` is served here instead: its head is read into a
//! buffer freed once parsed, the request goes through the same router as every other (the same
//! authentication, limits and middleware), and the response is written straight to the
//! socket, with chunked framing, after which the connection closes. What stays for the
//! stream's life is the socket and the response body.
//!
//! Everything else, and a stream requested on a connection that already served another
//! request, goes to hyper: the decision peeks at the first bytes and consumes nothing.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderName, HeaderValue, Request, Response, Version, header};
use axum::response::IntoResponse;
use futures::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tower::ServiceExt;

use crate::http::error::ApiError;

/// The request line's start that sends a connection here.
const PREFIX: &[u8] = b"GET /api/notifications/stream";
/// Most headers a stream request may carry.
const MAX_HEADERS: usize = 64;

/// Whether the connection's first request is for the live stream, from its first bytes
/// (waiting for them at most `timeout`). `None` when the client sent nothing in time or
/// went away; undecidable first bytes count as "not a stream" (hyper serves them correctly).
pub async fn is_stream_request(stream: &TcpStream, timeout: Duration) -> Option<bool> {
    let mut first = [0u8; PREFIX.len() + 1];
    let n = tokio::time::timeout(timeout, stream.peek(&mut first)).await.ok()?.ok()?;
    if n == 0 {
        return None;
    }
    Some(n == first.len() && first.starts_with(PREFIX) && matches!(first[PREFIX.len()], b' ' | b'?'))
}

/// Serves the one stream request waiting on `stream` through `router`, then closes.
pub async fn serve(
    mut stream: TcpStream,
    remote: SocketAddr,
    router: Router,
    header_timeout: Duration,
    max_head: usize,
) {
    let mut request = match tokio::time::timeout(header_timeout, read_head(&mut stream, max_head)).await {
        Ok(Ok(request)) => request,
        Ok(Err(Refused::Gone)) | Err(_) => return,
        Ok(Err(Refused::Bad(why))) => {
            let _ = write_response(&mut stream, ApiError::bad_request(why).into_response(), true).await;
            return;
        }
    };
    let chunked = request.version() == Version::HTTP_11;
    request.extensions_mut().insert(ConnectInfo(remote));
    let response = match router.oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    };
    if let Err(e) = write_response(&mut stream, response, chunked).await {
        tracing::debug!(error = %e, %remote, "live stream ended with an error");
    }
}

/// Why a request head was not read.
enum Refused {
    /// The client went away (or the socket failed).
    Gone,
    /// The head is not one this path serves; the text says why.
    Bad(&'static str),
}

/// Reads and parses the request head; the buffer is dropped on return.
async fn read_head(stream: &mut TcpStream, max_head: usize) -> Result<Request<Body>, Refused> {
    let mut buf = Vec::with_capacity(1024);
    loop {
        if buf.len() >= max_head {
            return Err(Refused::Bad("the request head is too large"));
        }
        buf.reserve(1024.min(max_head - buf.len()));
        let read = stream.read_buf(&mut buf).await.map_err(|_| Refused::Gone)?;
        if read == 0 {
            return Err(Refused::Gone);
        }
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut parsed = httparse::Request::new(&mut headers);
        match parsed.parse(&buf) {
            Ok(httparse::Status::Partial) => continue,
            Ok(httparse::Status::Complete(len)) => {
                if len != buf.len() {
                    // Bytes after the head: a body or a pipelined request, neither of which a
                    // stream request has.
                    return Err(Refused::Bad("a stream request has no body"));
                }
                return build(&parsed);
            }
            Err(httparse::Error::TooManyHeaders) => return Err(Refused::Bad("too many request headers")),
            Err(_) => return Err(Refused::Bad("malformed request head")),
        }
    }
}

fn build(parsed: &httparse::Request<'_, '_>) -> Result<Request<Body>, Refused> {
    let version = match parsed.version {
        Some(0) => Version::HTTP_10,
        _ => Version::HTTP_11,
    };
    let mut request =
        Request::builder().method(parsed.method.unwrap_or("GET")).uri(parsed.path.unwrap_or("/")).version(version);
    for h in parsed.headers.iter() {
        let name = HeaderName::from_bytes(h.name.as_bytes()).map_err(|_| Refused::Bad("malformed header name"))?;
        if name == header::CONTENT_LENGTH && h.value != b"0" || name == header::TRANSFER_ENCODING {
            return Err(Refused::Bad("a stream request has no body"));
        }
        let value = HeaderValue::from_bytes(h.value).map_err(|_| Refused::Bad("malformed header value"))?;
        request = request.header(name, value);
    }
    request.body(Body::empty()).map_err(|_| Refused::Bad("malformed request line"))
}

/// Writes `response` and its body as it comes, until the body ends or the client leaves.
async fn write_response(stream: &mut TcpStream, response: Response<Body>, chunked: bool) -> std::io::Result<()> {
    let (parts, body) = response.into_parts();
    let length = axum::body::HttpBody::size_hint(&body).exact();
    let mut head = format!("HTTP/1.1 {} {}\r\n", parts.status.as_u16(), parts.status.canonical_reason().unwrap_or(""))
        .into_bytes();
    for (name, value) in &parts.headers {
        if written_here(name) {
            continue;
        }
        head.extend_from_slice(name.as_str().as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(
        format!("date: {}\r\nconnection: close\r\n", httpdate::fmt_http_date(std::time::SystemTime::now())).as_bytes(),
    );
    let chunked = chunked && length.is_none();
    match length {
        Some(n) => head.extend_from_slice(format!("content-length: {n}\r\n").as_bytes()),
        None if chunked => head.extend_from_slice(b"transfer-encoding: chunked\r\n"),
        // HTTP/1.0: the body ends when the connection closes.
        None => {}
    }
    head.extend_from_slice(b"\r\n");
    stream.write_all(&head).await?;
    drop(head);
    let mut body = body.into_data_stream();
    loop {
        tokio::select! {
            chunk = body.next() => match chunk {
                Some(Ok(data)) if data.is_empty() => {}
                Some(Ok(data)) => {
                    if chunked {
                        let mut framed = Vec::with_capacity(data.len() + 12);
                        framed.extend_from_slice(format!("{:x}\r\n", data.len()).as_bytes());
                        framed.extend_from_slice(&data);
                        framed.extend_from_slice(b"\r\n");
                        stream.write_all(&framed).await?;
                    } else {
                        stream.write_all(&data).await?;
                    }
                }
                Some(Err(e)) => return Err(std::io::Error::other(e)),
                None => break,
            },
            // The client sends nothing more on this connection; readable means it closed
            // (or broke the protocol): either way the stream is over, and its task with it.
            readable = stream.readable() => {
                readable?;
                match stream.try_read(&mut [0u8; 64]) {
                    Ok(_) => return Ok(()),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(e),
                }
            }
        }
    }
    if chunked {
        stream.write_all(b"0\r\n\r\n").await?;
    }
    stream.shutdown().await
}

/// The response headers this path writes itself: the framing, `connection: close` and `date`.
fn written_here(name: &HeaderName) -> bool {
    [header::CONNECTION, header::TRANSFER_ENCODING, header::CONTENT_LENGTH, header::DATE].contains(name)
        || name.as_str() == "keep-alive"
}
