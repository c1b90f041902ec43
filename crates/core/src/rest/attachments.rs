//! Attachments: upload into a conversation (multipart, streamed to the object store) and
//! download (members only, proxied from the object store: the local filesystem has no
//! signed URLs, and a proxied stream is authorized on every request).
//!
//! Upload: one multipart field `file` (its `filename` and `Content-Type` are the name and
//! declared type); fields after it are not read. The body is streamed: at most
//! `limits.max_attachment_bytes` of content (413 problem beyond it, nothing kept); a
//! `Content-Length` beyond that plus [`MULTIPART_OVERHEAD_BYTES`] is refused before reading.
//! A refused upload's body is drained (up to [`DRAIN_BYTES`]) so the client receives the
//! problem. Download: `Content-Type` as stored,
//! `Content-Disposition` (`inline` for the images of
//! [`crate::service::INLINE_CONTENT_TYPES`], else `attachment`), `X-Content-Type-Options:
//! nosniff` and a sandboxing `Content-Security-Policy`.

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chat_domain::{AttachmentId, ConversationId};
use futures::StreamExt;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::extract::{Actor, ApiJson, PathParams};
use super::model::AttachmentDto;
use super::problem::{ApiResult, Problem};
use crate::service::{BodyError, INLINE_CONTENT_TYPES, Upload, UploadError};

/// Multipart framing allowed on top of the content limit (boundaries, part headers).
pub const MULTIPART_OVERHEAD_BYTES: u64 = 64 * 1024;

/// A refused upload's unread body is read and discarded up to this many bytes (for at most
/// [`DRAIN_TIME`]) before the problem is sent, so that the client, still sending, receives it
/// instead of a reset connection. Beyond that the connection is closed.
pub const DRAIN_BYTES: u64 = 16 * 1024 * 1024;
/// Longest time spent draining a refused upload.
pub const DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(10);

/// Discards up to [`DRAIN_BYTES`] of an unread body.
async fn drain_body(body: Body) {
    let mut data = body.into_data_stream();
    let _ = tokio::time::timeout(DRAIN_TIME, async {
        let mut n = 0u64;
        while let Some(Ok(chunk)) = data.next().await {
            n += chunk.len() as u64;
            if n > DRAIN_BYTES {
                break;
            }
        }
    })
    .await;
}

/// Discards up to [`DRAIN_BYTES`] of the rest of a multipart body.
async fn drain_form(form: &mut Multipart) {
    let _ = tokio::time::timeout(DRAIN_TIME, async {
        let mut n = 0u64;
        while let Ok(Some(mut field)) = form.next_field().await {
            while let Ok(Some(chunk)) = field.chunk().await {
                n += chunk.len() as u64;
                if n > DRAIN_BYTES {
                    return;
                }
            }
        }
    })
    .await;
}

/// The multipart form of an upload.
#[derive(Deserialize, ToSchema)]
#[allow(dead_code, reason = "documents the multipart form; the handler streams the field")]
pub struct UploadForm {
    /// The file: its part's `filename` is the name, its `Content-Type` the declared media
    /// type (checked against the allowlist; images against their content).
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
}

fn too_large(limit: u64) -> Problem {
    Problem::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "attachment-too-large",
        format!("the file is larger than the attachment limit of {limit} bytes"),
    )
    .with_field("file")
}

impl From<UploadError> for Problem {
    fn from(e: UploadError) -> Self {
        match e {
            UploadError::Domain(d) => d.into(),
            UploadError::TooLarge { limit } => too_large(limit),
            UploadError::UnsupportedType(why) => {
                Problem::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported-attachment-type", why).with_field("file")
            }
            UploadError::Body(why) => Problem::bad_request(format!("could not read the upload: {why}")),
        }
    }
}

fn multipart_problem(e: axum::extract::multipart::MultipartError, limit: u64) -> Problem {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE { too_large(limit) } else { Problem::bad_request(e.body_text()) }
}

/// Uploads a file into a conversation (members only). The attachment is stored unattached:
/// send a message with its id in `attachmentIds` to attach it. Unattached uploads are
/// removed by the cleanup after a while (default 24 h).
#[utoipa::path(post, path = "/api/v1/conversations/{id}/attachments", tag = "attachments", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Conversation id")),
    request_body(content = UploadForm, content_type = "multipart/form-data",
        description = "One field `file`; at most `limits.max_attachment_bytes` (default 10 MiB)"),
    responses(
        (status = 201, description = "Stored, not yet attached", body = AttachmentDto,
            headers(("Location" = String, description = "Download URL"))),
        (status = 413, description = "The file is larger than the attachment limit (default 10 MiB)", body = Problem,
            content_type = "application/problem+json"),
        (status = 415, description = "The body is not multipart/form-data, or the file's media type is not allowed or does not match its content",
            body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "No `file` field, another field before it, or an empty file", body = Problem,
            content_type = "application/problem+json")))]
pub async fn upload(
    State(s): State<AppState>,
    Actor(actor): Actor,
    p: PathParams,
    req: Request,
) -> ApiResult<(StatusCode, HeaderMap, ApiJson<AttachmentDto>)> {
    let conv: ConversationId = p.id("id")?;
    let limit = s.service.limits().max_attachment_bytes;
    let cap = limit.saturating_add(MULTIPART_OVERHEAD_BYTES);
    let declared_len =
        req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if let Err(e) = s.service.check_upload(actor, conv).await {
        drain_body(req.into_body()).await;
        return Err(e.into());
    }
    if declared_len.is_some_and(|n| n > cap) {
        drain_body(req.into_body()).await;
        return Err(too_large(limit).into());
    }
    let is_multipart = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.trim_start().to_ascii_lowercase().starts_with("multipart/form-data"));
    if !is_multipart {
        drain_body(req.into_body()).await;
        return Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "expected a multipart/form-data body with a field named `file`",
        )
        .into());
    }
    let mut form = Multipart::from_request(req, &s)
        .await
        .map_err(|rej| Problem::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported-media-type", rej.body_text()))?;
    let field = match form.next_field().await {
        Ok(Some(f)) if f.name() == Some("file") => f,
        Ok(Some(f)) => {
            let name = f.name().unwrap_or("").to_string();
            drop(f);
            drain_form(&mut form).await;
            return Err(Problem::invalid(
                "file",
                format!("unexpected multipart field {name:?}: send one field named `file`"),
            )
            .into());
        }
        Ok(None) => return Err(Problem::invalid("file", "missing multipart field `file`").into()),
        Err(e) => return Err(multipart_problem(e, limit).into()),
    };
    let up = Upload {
        conversation_id: conv,
        name: field.file_name().map(str::to_owned),
        content_type: field.content_type().map(str::to_owned),
    };
    let body = field.map(|chunk| {
        chunk.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                BodyError::TooLarge
            } else {
                BodyError::Read(e.body_text())
            }
        })
    });
    let a = match s.service.upload(actor, up, body).await {
        Ok(a) => a,
        Err(e) => {
            drain_form(&mut form).await;
            return Err(Problem::from(e).into());
        }
    };
    let dto = AttachmentDto::from(&a);
    let mut headers = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&dto.url) {
        headers.insert(header::LOCATION, v);
    }
    Ok((StatusCode::CREATED, headers, ApiJson(dto)))
}

/// `Content-Disposition` with an ASCII fallback name and the UTF-8 name (RFC 6266, 8187).
fn content_disposition(inline: bool, name: &str) -> String {
    let ascii: String =
        name.chars().map(|c| if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' { c } else { '_' }).collect();
    let mut encoded = String::new();
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            encoded.push(b as char);
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    let kind = if inline { "inline" } else { "attachment" };
    format!("{kind}; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

/// Downloads an attachment's content: members of its conversation (404 for private
/// conversations, 403 for public channels not joined); an unattached upload only by its
/// uploader; 404 once its message is deleted.
#[utoipa::path(get, path = "/api/v1/attachments/{id}", tag = "attachments", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Attachment id")),
    responses((status = 200, description = "The content, with its stored media type", content_type = "application/octet-stream",
        body = Vec<u8>,
        headers(
            ("Content-Disposition" = String, description = "`inline` (safe images) or `attachment`, with the file name"),
            ("X-Content-Type-Options" = String, description = "`nosniff`"),
            ("ETag" = String, description = "The content's SHA-256")))))]
pub async fn download(State(s): State<AppState>, Actor(actor): Actor, p: PathParams) -> ApiResult<Response> {
    let id: AttachmentId = p.id("id")?;
    let d = s.service.download(actor, id).await?;
    let a = &d.attachment;
    let stream = d.blob.stream.map(|r| r.map_err(std::io::Error::other));
    let mut res = Body::from_stream(stream).into_response();
    let h = res.headers_mut();
    let ct = HeaderValue::from_str(&a.content_type).unwrap_or(HeaderValue::from_static("application/octet-stream"));
    h.insert(header::CONTENT_TYPE, ct);
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(d.blob.size));
    let inline = INLINE_CONTENT_TYPES.contains(&a.content_type.as_str());
    if let Ok(v) = HeaderValue::from_str(&content_disposition(inline, &a.name)) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("default-src 'none'; sandbox"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-cache"));
    if let Ok(v) = HeaderValue::from_str(&format!("\"{}\"", a.sha256)) {
        h.insert(header::ETAG, v);
    }
    Ok(res)
}

/// Routes of this module. The upload route has no default body limit: the handler limits
/// the body itself (content limit plus multipart framing) and streams it.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(upload)).layer(DefaultBodyLimit::disable()).routes(routes!(download))
}

#[cfg(test)]
mod tests {
    use super::content_disposition;

    #[test]
    fn content_disposition_quotes_and_encodes() {
        assert_eq!(content_disposition(true, "a b.png"), "inline; filename=\"a b.png\"; filename*=UTF-8''a%20b.png");
        assert_eq!(
            content_disposition(false, "r\"é\\.pdf"),
            "attachment; filename=\"r___.pdf\"; filename*=UTF-8''r%22%C3%A9%5C.pdf"
        );
    }
}
