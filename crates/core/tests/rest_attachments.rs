//! Attachments over REST against a real server, on the local filesystem and (when
//! `CHAT_TEST_S3_URL` is set, as `tests/external/s3.sh` does) on an S3 API server: upload,
//! send, download as a member, denied as a non-member, oversize rejected with a clear
//! problem and nothing kept, content-type checks, delete hides, cleanup removes.

mod common;

use std::time::Duration;

use chat_blob::{BlobConfig, BlobStore, S3Config};
use chat_core::service::AttachmentPolicy;
use chat_domain::Limits;
use common::{TestApp, TestUser, assert_problem, spawn_app_with};
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};
use uuid::Uuid;

/// A 3×2 PNG (signature and IHDR: all that is read for the type and the dimensions).
const PNG_3X2: &[u8] = &[
    0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13, b'I', b'H', b'D', b'R', 0, 0, 0, 3, 0, 0, 0, 2, 8, 6,
    0, 0, 0, 0x1F, 0x15, 0xC4, 0x89,
];

/// Where the content goes in a test.
enum Where {
    Local,
    S3,
}

/// A server with attachments on `place` (`None` when S3 is asked for but not configured).
struct Env {
    app: TestApp,
    blobs: BlobStore,
    _dir: tempfile::TempDir,
}

async fn env(place: Where, max_attachment_bytes: u64) -> Option<Env> {
    let dir = tempfile::tempdir().unwrap();
    let blobs = match place {
        Where::Local => BlobStore::open(&BlobConfig::Local { dir: dir.path().join("attachments") }, 64 * 1024).unwrap(),
        Where::S3 => {
            let Ok(endpoint) = std::env::var("CHAT_TEST_S3_URL") else {
                eprintln!("CHAT_TEST_S3_URL not set: S3 variant skipped");
                return None;
            };
            let cfg = S3Config {
                bucket: std::env::var("CHAT_TEST_S3_BUCKET").unwrap_or_else(|_| "chat-test".into()),
                allow_http: endpoint.starts_with("http://"),
                endpoint: Some(endpoint),
                access_key_id: Some("testing".into()),
                secret_access_key: Some("testing".into()),
                prefix: format!("rest-test-{}", Uuid::now_v7()),
                ..Default::default()
            };
            BlobStore::open(&BlobConfig::S3(cfg), 5 * 1024 * 1024).unwrap()
        }
    };
    let limits = Limits { max_attachment_bytes, ..Limits::default() };
    let b = blobs.clone();
    let app = spawn_app_with(limits, move |s| s.with_attachments(b, AttachmentPolicy::default())).await;
    Some(Env { app, blobs, _dir: dir })
}

fn file_form(name: &str, content_type: &str, bytes: Vec<u8>) -> Form {
    Form::new().part("file", Part::bytes(bytes).file_name(name.to_string()).mime_str(content_type).unwrap())
}

async fn upload(app: &TestApp, who: &TestUser, conv: Uuid, form: Form) -> reqwest::Response {
    let url = app.url(&format!("/api/v1/conversations/{conv}/attachments"));
    app.client.post(url).bearer_auth(&who.token).multipart(form).send().await.unwrap()
}

async fn upload_ok(app: &TestApp, who: &TestUser, conv: Uuid, name: &str, ct: &str, bytes: Vec<u8>) -> Value {
    let res = upload(app, who, conv, file_form(name, ct, bytes)).await;
    assert_eq!(res.status(), 201, "upload {name}");
    res.json().await.unwrap()
}

async fn send_with(app: &TestApp, who: &TestUser, conv: Uuid, ids: &[&Value]) -> reqwest::Response {
    let ids: Vec<&Value> = ids.iter().map(|a| &a["attachmentId"]).collect();
    app.post(
        &format!("/api/v1/conversations/{conv}/messages"),
        &who.token,
        json!({"text": "files", "attachmentIds": ids}),
    )
    .await
}

async fn download(app: &TestApp, who: &TestUser, id: &Value) -> reqwest::Response {
    app.get(&format!("/api/v1/attachments/{}", id.as_str().unwrap()), &who.token).await
}

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 253) as u8).collect()
}

async fn upload_send_download_as_member(place: Where) {
    let Some(env) = env(place, 1024 * 1024).await else { return };
    let app = &env.app;
    let (alice, bob) = (app.user("alice").await, app.user("bob").await);
    let conv = app.channel(&alice, "files", true).await;
    app.post(&format!("/api/v1/conversations/{conv}/members"), &alice.token, json!({"userId": bob.id})).await;

    let image = upload_ok(app, &alice, conv, "pixel.png", "image/png", PNG_3X2.to_vec()).await;
    assert_eq!(image["name"], "pixel.png");
    assert_eq!(image["contentType"], "image/png");
    assert_eq!(
        (image["size"].as_u64(), image["width"].as_u64(), image["height"].as_u64()),
        (Some(33), Some(3), Some(2))
    );
    assert_eq!(image["conversationId"], conv.to_string());
    assert_eq!(image["sha256"].as_str().unwrap().len(), 64);
    let doc_bytes = pattern(300 * 1024); // several local parts: a multipart upload
    let doc = upload_ok(app, &alice, conv, "../../report é.pdf", "application/octet-stream", doc_bytes.clone()).await;
    assert_eq!(doc["name"], "report é.pdf", "path stripped");

    // Unattached: only the uploader sees it.
    assert_eq!(download(app, &alice, &image["attachmentId"]).await.status(), 200);
    assert_problem(download(app, &bob, &image["attachmentId"]).await, 404).await;

    let res = send_with(app, &alice, conv, &[&image, &doc]).await;
    assert_eq!(res.status(), 201);
    let msg: Value = res.json().await.unwrap();
    let atts = msg["attachments"].as_array().unwrap();
    assert_eq!(atts.len(), 2);
    assert_eq!(atts[0]["attachmentId"], image["attachmentId"]);
    assert_eq!(atts[0]["url"], image["url"]);
    assert_eq!((atts[0]["width"].as_u64(), atts[1]["size"].as_u64()), (Some(3), Some(doc_bytes.len() as u64)));

    // Bob, a member, downloads both.
    let res = download(app, &bob, &image["attachmentId"]).await;
    assert_eq!(res.status(), 200);
    let h = res.headers().clone();
    assert_eq!(h["content-type"], "image/png");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert!(h["content-disposition"].to_str().unwrap().starts_with("inline; filename=\"pixel.png\""));
    assert_eq!(res.bytes().await.unwrap().as_ref(), PNG_3X2);
    let res = download(app, &bob, &doc["attachmentId"]).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/octet-stream");
    assert_eq!(res.headers()["content-length"], doc_bytes.len().to_string().as_str());
    let disposition = res.headers()["content-disposition"].to_str().unwrap().to_string();
    assert!(
        disposition.starts_with("attachment;") && disposition.contains("UTF-8''report%20%C3%A9.pdf"),
        "{disposition}"
    );
    assert_eq!(res.bytes().await.unwrap().as_ref(), doc_bytes.as_slice());

    // History and the event log carry the attachments.
    let history: Value =
        app.get(&format!("/api/v1/conversations/{conv}/messages"), &bob.token).await.json().await.unwrap();
    assert_eq!(history.as_array().unwrap().last().unwrap()["attachments"], msg["attachments"]);
    let events: Value =
        app.get(&format!("/api/v1/conversations/{conv}/events"), &bob.token).await.json().await.unwrap();
    let last = events.as_array().unwrap().last().unwrap();
    assert_eq!(last["payload"]["message"]["attachments"].as_array().unwrap().len(), 2);

    // Attached once only.
    let again = send_with(app, &alice, conv, &[&image]).await;
    assert_eq!(assert_problem(again, 422).await["field"], "attachmentIds");
}

async fn non_members_are_denied(place: Where) {
    let Some(env) = env(place, 1024 * 1024).await else { return };
    let app = &env.app;
    let (alice, mallory) = (app.user("alice").await, app.user("mallory").await);
    let private = app.channel(&alice, "secret", true).await;
    let public = app.channel(&alice, "lobby", false).await;
    let in_private = upload_ok(app, &alice, private, "a.txt", "text/plain", b"secret".to_vec()).await;
    let in_public = upload_ok(app, &alice, public, "b.txt", "text/plain", b"hello".to_vec()).await;
    assert_eq!(send_with(app, &alice, private, &[&in_private]).await.status(), 201);
    assert_eq!(send_with(app, &alice, public, &[&in_public]).await.status(), 201);

    assert_problem(download(app, &mallory, &in_private["attachmentId"]).await, 404).await;
    assert_problem(download(app, &mallory, &in_public["attachmentId"]).await, 403).await;
    let res = app.client.get(app.url(&format!("/api/v1/attachments/{}", in_public["attachmentId"].as_str().unwrap())));
    assert_problem(res.send().await.unwrap(), 401).await;
    assert_problem(download(app, &mallory, &json!(Uuid::now_v7().to_string())).await, 404).await;
    // Nor may a non-member upload, or attach someone else's upload.
    assert_problem(upload(app, &mallory, private, file_form("x.txt", "text/plain", b"x".to_vec())).await, 404).await;
    assert_problem(upload(app, &mallory, public, file_form("x.txt", "text/plain", b"x".to_vec())).await, 403).await;
    app.post(&format!("/api/v1/conversations/{public}/join"), &mallory.token, json!({})).await;
    let res = download(app, &mallory, &in_public["attachmentId"]).await;
    assert_eq!(res.status(), 200, "after joining, history (and its files) is readable");
    let alices = upload_ok(app, &alice, public, "c.txt", "text/plain", b"mine".to_vec()).await;
    assert_eq!(assert_problem(send_with(app, &mallory, public, &[&alices]).await, 422).await["field"], "attachmentIds");
}

async fn oversize_is_rejected_and_nothing_is_kept(place: Where) {
    let limit = 200 * 1024;
    let Some(env) = env(place, limit).await else { return };
    let app = &env.app;
    let alice = app.user("alice").await;
    let conv = app.channel(&alice, "big", false).await;
    // Just over the limit, streamed past several parts before it is noticed.
    let res =
        upload(app, &alice, conv, file_form("big.bin", "application/octet-stream", pattern(limit as usize + 1))).await;
    let p = assert_problem(res, 413).await;
    assert_eq!(p["type"], "urn:chat-sys:problem:attachment-too-large");
    assert!(p["detail"].as_str().unwrap().contains(&limit.to_string()), "{p}");
    // Far over it: refused by the declared length.
    let res =
        upload(app, &alice, conv, file_form("huge.bin", "application/octet-stream", pattern(4 * limit as usize))).await;
    assert_problem(res, 413).await;
    // Exactly the limit is fine.
    upload_ok(app, &alice, conv, "ok.bin", "application/octet-stream", pattern(limit as usize)).await;

    let far_future = chat_domain::Millis(i64::MAX);
    let rows = app.store.stale_attachments(far_future, 100).await.unwrap();
    assert_eq!(rows.len(), 1, "only the accepted upload has a row");
    assert_eq!(env.blobs.list(&conv.to_string()).await.unwrap().len(), 1, "no partial object kept");
}

async fn content_types_are_checked(place: Where) {
    let Some(env) = env(place, 1024 * 1024).await else { return };
    let app = &env.app;
    let alice = app.user("alice").await;
    let conv = app.channel(&alice, "types", false).await;
    for (ct, bytes, status) in [
        ("image/png", b"not a png at all".to_vec(), 415),
        ("image/jpeg", PNG_3X2.to_vec(), 415),
        ("text/html", b"<script>alert(1)</script>".to_vec(), 415),
        ("image/svg+xml", b"<svg/>".to_vec(), 415),
        ("text/plain", Vec::new(), 422),
    ] {
        let res = upload(app, &alice, conv, file_form("f", ct, bytes)).await;
        assert_problem(res, status).await;
    }
    let sniffed = upload_ok(app, &alice, conv, "noext", "application/octet-stream", PNG_3X2.to_vec()).await;
    assert_eq!(sniffed["contentType"], "image/png", "an image declared as octet-stream is typed by its content");
    let url = app.url(&format!("/api/v1/conversations/{conv}/attachments"));
    let res = app.client.post(&url).bearer_auth(&alice.token).json(&json!({"file": "x"})).send().await.unwrap();
    assert_problem(res, 415).await;
    let form = Form::new().text("note", "hi").part("file", Part::bytes(b"x".to_vec()).file_name("x"));
    assert_eq!(assert_problem(upload(app, &alice, conv, form).await, 422).await["field"], "file");
    assert_problem(upload(app, &alice, conv, Form::new().text("other", "x")).await, 422).await;
}

async fn delete_hides_and_cleanup_removes(place: Where) {
    let Some(env) = env(place, 1024 * 1024).await else { return };
    let app = &env.app;
    let alice = app.user("alice").await;
    let conv = app.channel(&alice, "gone", false).await;
    let a = upload_ok(app, &alice, conv, "a.txt", "text/plain", b"to be deleted".to_vec()).await;
    let unattached = upload_ok(app, &alice, conv, "b.txt", "text/plain", b"never sent".to_vec()).await;
    let kept = upload_ok(app, &alice, conv, "c.txt", "text/plain", b"kept".to_vec()).await;
    let msg: Value = send_with(app, &alice, conv, &[&a]).await.json().await.unwrap();
    assert_eq!(send_with(app, &alice, conv, &[&kept]).await.status(), 201);
    let res = app.req(
        reqwest::Method::DELETE,
        &format!("/api/v1/messages/{}", msg["messageId"].as_str().unwrap()),
        &alice.token,
    );
    let tomb: Value = res.send().await.unwrap().json().await.unwrap();
    assert_eq!(tomb["attachments"], json!([]));
    assert_problem(download(app, &alice, &a["attachmentId"]).await, 404).await;

    // The cleanup keeps fresh unattached uploads by default, removes deleted ones at once.
    let report = app.service.cleanup_attachments(Duration::from_secs(24 * 3600), 100).await.unwrap();
    let removed: Vec<String> = report.removed.iter().map(|(x, _)| x.id.to_string()).collect();
    assert_eq!(removed, [a["attachmentId"].as_str().unwrap()]);
    assert!(report.removed[0].1, "its content was there and is gone");
    let report = app.service.cleanup_attachments(Duration::ZERO, 100).await.unwrap();
    let removed: Vec<String> = report.removed.iter().map(|(x, _)| x.id.to_string()).collect();
    assert_eq!(removed, [unattached["attachmentId"].as_str().unwrap()]);
    assert!(report.failed.is_empty());
    assert_eq!(env.blobs.list(&conv.to_string()).await.unwrap().len(), 1, "only the attached file remains");
    assert_eq!(download(app, &alice, &kept["attachmentId"]).await.status(), 200);
}

macro_rules! on_both {
    ($($case:ident),* $(,)?) => {
        mod local {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() { super::$case(super::Where::Local).await })*
        }
        mod s3 {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() { super::$case(super::Where::S3).await })*
        }
    };
}

on_both!(
    upload_send_download_as_member,
    non_members_are_denied,
    oversize_is_rejected_and_nothing_is_kept,
    content_types_are_checked,
    delete_hides_and_cleanup_removes,
);
