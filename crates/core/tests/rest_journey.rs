//! The full user journey over REST: register, login (seed shape and cookies), channel,
//! members, messages, edits, reactions, pins, threads, acks, events, unread counts,
//! refresh rotation and logout.

mod common;

use common::{assert_problem, spawn_app};
use reqwest::Method;
use serde_json::{Value, json};

#[tokio::test]
async fn full_user_journey() {
    let app = spawn_app().await;

    // Register two users; register answers 201 with the user JSON.
    let res = app.register_raw("alice").await;
    assert_eq!(res.status(), 201);
    let alice_json: Value = res.json().await.unwrap();
    assert_eq!(alice_json["username"], "alice");
    assert!(alice_json["createdAt"].as_str().unwrap().ends_with('Z'));
    let res = app.register_raw("bob").await;
    assert_eq!(res.status(), 201);

    // Login at the seed path: seed response shape plus HttpOnly cookies.
    let res = app
        .client
        .post(app.url("/auth/login"))
        .json(&json!({"username": "alice", "password": "password-alice"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let cookies: Vec<String> =
        res.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_string()).collect();
    for name in ["accessToken=", "refreshToken="] {
        let c = cookies.iter().find(|c| c.starts_with(name)).unwrap_or_else(|| panic!("{name} cookie: {cookies:?}"));
        assert!(c.contains("HttpOnly"), "{c}");
        assert!(c.contains("SameSite=Lax"), "{c}");
        assert!(c.contains("Path=/"), "{c}");
    }
    let login: Value = res.json().await.unwrap();
    let alice_token = login["data"]["accessToken"].as_str().unwrap().to_string();
    let alice_refresh = login["data"]["refreshToken"].as_str().unwrap().to_string();
    let alice_id = alice_json["userId"].as_str().unwrap().to_string();

    // The cookie alone authenticates.
    let cookie_header = format!("accessToken={alice_token}");
    let res = app.client.get(app.url("/api/v1/users/me")).header("cookie", cookie_header).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let me: Value = res.json().await.unwrap();
    assert_eq!(me["userId"], alice_id.as_str());
    // ... for reads only: a state-changing request needs the Authorization header (a cookie
    // rides along on cross-site form posts: CSRF).
    let res = app
        .client
        .post(app.url("/api/v1/conversations"))
        .header("cookie", format!("accessToken={alice_token}"))
        .json(&json!({"type": "CHANNEL", "name": "forged"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401, "a POST authenticated by the cookie alone");

    // Login at /api/v1 too.
    let res = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({"username": "bob", "password": "password-bob"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let bob_login: Value = res.json().await.unwrap();
    let bob_token = bob_login["data"]["accessToken"].as_str().unwrap().to_string();
    let res = app.get("/api/v1/users?prefix=bo", &alice_token).await;
    let found: Value = res.json().await.unwrap();
    assert_eq!(found.as_array().unwrap().len(), 1);
    let bob_id = found[0]["userId"].as_str().unwrap().to_string();

    // Alice creates a channel and adds Bob.
    let res = app
        .post("/api/v1/conversations", &alice_token, json!({"type": "CHANNEL", "name": "general", "topic": "all"}))
        .await;
    assert_eq!(res.status(), 201);
    let conv: Value = res.json().await.unwrap();
    assert_eq!(conv["type"], "CHANNEL");
    let cid = conv["conversationId"].as_str().unwrap().to_string();
    let res = app.post(&format!("/api/v1/conversations/{cid}/members"), &alice_token, json!({"userId": bob_id})).await;
    assert_eq!(res.status(), 201);
    let res = app.get(&format!("/api/v1/conversations/{cid}/members"), &bob_token).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap().as_array().unwrap().len(), 2);

    // Send three messages; an idempotent retry answers 200 with the original.
    let mut seqs = Vec::new();
    for (i, text) in ["hello", "second", "third @bob"].iter().enumerate() {
        let res = app
            .post(
                &format!("/api/v1/conversations/{cid}/messages"),
                &alice_token,
                json!({"text": text, "clientMsgId": format!("c-{i}")}),
            )
            .await;
        assert_eq!(res.status(), 201);
        let m: Value = res.json().await.unwrap();
        for key in ["messageId", "conversationId", "userId", "serverSeq", "threadRootId", "text", "type", "createdAt"] {
            assert!(m.get(key).is_some(), "{key} in {m}");
        }
        for key in ["updatedAt", "edited", "deleted", "clientMsgId", "versionCount", "replyCount", "mentions"] {
            assert!(m.get(key).is_some(), "{key} in {m}");
        }
        assert_eq!(m["userId"], alice_id.as_str());
        seqs.push((m["serverSeq"].as_i64().unwrap(), m["messageId"].as_str().unwrap().to_string()));
    }
    let first_body = json!({"text": "hello", "clientMsgId": "c-0"});
    let res = app.post(&format!("/api/v1/conversations/{cid}/messages"), &alice_token, first_body).await;
    assert_eq!(res.status(), 200);
    let dup: Value = res.json().await.unwrap();
    assert_eq!(dup["serverSeq"].as_i64().unwrap(), seqs[0].0);
    assert_eq!(app.messages(cid.parse().unwrap()).await.len(), 3);

    // List by seq window: strictly between the first and the third.
    let path = format!("/api/v1/conversations/{cid}/messages?afterSeq={}&beforeSeq={}&limit=10", seqs[0].0, seqs[2].0);
    let page: Value = app.get(&path, &bob_token).await.json().await.unwrap();
    let page = page.as_array().unwrap();
    assert_eq!(page.len(), 1);
    assert_eq!(page[0]["text"], "second");

    // Edit, then versions.
    let mid = seqs[1].1.clone();
    let res =
        app.send_json(Method::PATCH, &format!("/api/v1/messages/{mid}"), &alice_token, json!({"text": "2nd"})).await;
    assert_eq!(res.status(), 200);
    let edited: Value = res.json().await.unwrap();
    assert_eq!(edited["text"], "2nd");
    assert_eq!(edited["edited"], true);
    let versions: Value = app.get(&format!("/api/v1/messages/{mid}/versions"), &bob_token).await.json().await.unwrap();
    assert_eq!(versions[0]["oldText"], "second");

    // React (percent-encoded emoji) and pin.
    let res = app.req(Method::PUT, &format!("/api/v1/messages/{mid}/reactions/%F0%9F%91%8D"), &bob_token).send().await;
    assert_eq!(res.unwrap().status(), 204);
    let reactions: Value =
        app.get(&format!("/api/v1/messages/{mid}/reactions"), &alice_token).await.json().await.unwrap();
    assert_eq!(reactions[0]["emoji"], "👍");
    assert_eq!(reactions[0]["userId"], bob_id.as_str());
    let res = app.req(Method::PUT, &format!("/api/v1/messages/{mid}/pin"), &bob_token).send().await.unwrap();
    assert_eq!(res.status(), 204);
    let pins: Value = app.get(&format!("/api/v1/conversations/{cid}/pins"), &alice_token).await.json().await.unwrap();
    assert_eq!(pins[0]["messageId"], mid.as_str());

    // Thread reply by Bob.
    let root = seqs[0].1.clone();
    let res = app
        .post(&format!("/api/v1/conversations/{cid}/messages"), &bob_token, json!({"text": "re", "threadRootId": root}))
        .await;
    assert_eq!(res.status(), 201);
    let reply: Value = res.json().await.unwrap();
    let replies: Value = app.get(&format!("/api/v1/messages/{root}/replies"), &alice_token).await.json().await.unwrap();
    assert_eq!(replies.as_array().unwrap().len(), 1);
    assert_eq!(replies[0]["messageId"], reply["messageId"]);
    let root_json: Value = app.get(&format!("/api/v1/messages/{root}"), &alice_token).await.json().await.unwrap();
    assert_eq!(root_json["replyCount"], 1);

    // Unread counts in Bob's list (3 of Alice's messages; Bob has seen nothing).
    let mine: Value = app.get("/api/v1/conversations", &bob_token).await.json().await.unwrap();
    let entry = mine.as_array().unwrap().iter().find(|c| c["conversationId"] == cid.as_str()).unwrap().clone();
    assert_eq!(entry["unreadCount"], 3, "{entry}");
    assert_eq!(entry["mentionCount"], 1, "{entry}");
    let last_seq = entry["lastSeq"].as_i64().unwrap();
    assert!(last_seq >= seqs[2].0);

    // Ack everything; unread drops to zero.
    let res = app.post(&format!("/api/v1/conversations/{cid}/ack"), &bob_token, json!({"seenSeq": last_seq})).await;
    assert_eq!(res.status(), 200);
    let pos: Value = res.json().await.unwrap();
    assert_eq!(pos["seenSeq"], last_seq);
    assert_eq!(pos["deliveredSeq"], last_seq);
    let mine: Value = app.get("/api/v1/conversations", &bob_token).await.json().await.unwrap();
    let entry = mine.as_array().unwrap().iter().find(|c| c["conversationId"] == cid.as_str()).unwrap().clone();
    assert_eq!(entry["unreadCount"], 0);
    assert_eq!(entry["seenSeq"], last_seq);

    // Events after the first message: seq order, gap-free, typed.
    let after = seqs[0].0;
    let events: Value = app
        .get(&format!("/api/v1/conversations/{cid}/events?afterSeq={after}"), &bob_token)
        .await
        .json()
        .await
        .unwrap();
    let events = events.as_array().unwrap();
    assert_eq!(events.len() as i64, last_seq - after);
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e["seq"].as_i64().unwrap(), after + 1 + i as i64);
        for key in ["eventId", "conversationId", "type", "actorId", "createdAt", "payload"] {
            assert!(e.get(key).is_some(), "{key} in {e}");
        }
    }
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    for t in ["MESSAGE", "MESSAGE_EDITED", "REACTION_ADDED", "MESSAGE_PINNED"] {
        assert!(types.contains(&t), "{t} in {types:?}");
    }

    // Refresh rotates: the new pair works, the old refresh token is rejected.
    let res = app.client.post(app.url("/api/v1/auth/refresh")).json(&json!({"refreshToken": alice_refresh})).send();
    let res = res.await.unwrap();
    assert_eq!(res.status(), 200);
    let rotated: Value = res.json().await.unwrap();
    let new_refresh = rotated["data"]["refreshToken"].as_str().unwrap().to_string();
    let new_access = rotated["data"]["accessToken"].as_str().unwrap().to_string();
    assert_ne!(new_refresh, alice_refresh);
    let res = app.client.post(app.url("/api/v1/auth/refresh")).json(&json!({"refreshToken": alice_refresh})).send();
    assert_problem(res.await.unwrap(), 401).await;
    assert_eq!(app.get("/api/v1/users/me", &new_access).await.status(), 200);

    // Logout (refresh token from the cookie) revokes it and clears the cookies.
    let res = app
        .req(Method::POST, "/api/v1/auth/logout", &new_access)
        .header("cookie", format!("refreshToken={new_refresh}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let cleared: Vec<String> =
        res.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_string()).collect();
    assert!(cleared.iter().any(|c| c.starts_with("refreshToken=;") && c.contains("Max-Age=0")), "{cleared:?}");
    let res = app.client.post(app.url("/api/v1/auth/refresh")).json(&json!({"refreshToken": new_refresh})).send();
    assert_problem(res.await.unwrap(), 401).await;
}

#[tokio::test]
async fn dm_is_created_once_and_group_dm_lists_members() {
    let app = spawn_app().await;
    let a = app.user("ann").await;
    let b = app.user("ben").await;
    let c = app.user("cid").await;
    let res = app.post("/api/v1/conversations", &a.token, json!({"type": "DM", "memberIds": [b.id]})).await;
    assert_eq!(res.status(), 201);
    let dm: Value = res.json().await.unwrap();
    assert_eq!(dm["type"], "DM");
    let res = app.post("/api/v1/conversations", &b.token, json!({"type": "DM", "memberIds": [a.id]})).await;
    assert_eq!(res.status(), 200);
    let again: Value = res.json().await.unwrap();
    assert_eq!(again["conversationId"], dm["conversationId"]);
    let res = app.post("/api/v1/conversations", &a.token, json!({"type": "GROUP_DM", "memberIds": [b.id, c.id]})).await;
    assert_eq!(res.status(), 201);
    let g: Value = res.json().await.unwrap();
    let gid = g["conversationId"].as_str().unwrap();
    let members: Value = app.get(&format!("/api/v1/conversations/{gid}/members"), &c.token).await.json().await.unwrap();
    assert_eq!(members.as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn public_channel_can_be_found_joined_and_left() {
    let app = spawn_app().await;
    let owner = app.user("owner").await;
    let other = app.user("other").await;
    let cid = app.channel(&owner, "lobby", false).await;
    let public: Value = app.get("/api/v1/conversations/public", &other.token).await.json().await.unwrap();
    assert!(public.as_array().unwrap().iter().any(|c| c["conversationId"] == cid.to_string()));
    let res = app.post(&format!("/api/v1/conversations/{cid}/join"), &other.token, json!({})).await;
    assert_eq!(res.status(), 200);
    app.say(&other, cid, "hi").await;
    let res = app.post(&format!("/api/v1/conversations/{cid}/leave"), &other.token, json!({})).await;
    assert_eq!(res.status(), 204);
    let res = app.post(&format!("/api/v1/conversations/{cid}/messages"), &other.token, json!({"text": "x"})).await;
    assert_problem(res, 403).await;
    let res = app
        .send_json(Method::PATCH, &format!("/api/v1/conversations/{cid}"), &owner.token, json!({"topic": "new topic"}))
        .await;
    assert_eq!(res.status(), 200);
    let updated: Value = res.json().await.unwrap();
    assert_eq!(updated["topic"], "new topic");
}
