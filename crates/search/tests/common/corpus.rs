//! The seeded corpus: four users, three conversations, eight messages, and the queries with
//! their known answer sets, checked on any [`SearchEngine`].
//!
//! | msg | conversation (members) | author | text | extra |
//! |---|---|---|---|---|
//! | m1 | general (alice, bob, carol) | alice | Quarterly budget review tomorrow | |
//! | m2 | general | bob | Budget spreadsheet attached | an attachment |
//! | m3 | general | carol | @alice please review the budget | mentions alice |
//! | m4 | secret (bob, dave) | bob | Secret budget numbers | |
//! | m5 | lunch (alice, carol) | carol | Lunch plans tomorrow | |
//! | m6 | general | bob | @channel office closed tomorrow | `@channel` |
//! | m7 | general | alice | zebra crossing | edited to "giraffe crossing" |
//! | m8 | general | bob | walrus sighting | deleted |
//!
//! Message `i` is created at `BASE + i` seconds.

use chat_domain::{
    Attachment, AttachmentId, AttachmentStatus, ConversationId, ConversationKind, ConversationSettings, EventId,
    MemberRole, Mentions, MessageId, Millis, User, UserId, WorkspaceId,
};
use chat_search::{AttachmentFilter, MentionFilter, SearchCursor, SearchEngine, SearchQuery, terms};
use chat_storage::{
    AttachmentStore, ConversationStore, MessageEdit, MessageStore, NewConversation, NewMessage, SendOutcome, SqlStore,
    UserStore,
};

/// Creation instant of message 1, minus one second (ms).
pub const BASE: i64 = 1_800_000_000_000;

/// Instant of message `i`.
pub fn at(i: i64) -> Millis {
    Millis(BASE + i * 1000)
}

/// Ids of the seeded corpus.
pub struct Corpus {
    pub alice: UserId,
    pub bob: UserId,
    pub carol: UserId,
    pub dave: UserId,
    pub general: ConversationId,
    pub secret: ConversationId,
    pub lunch: ConversationId,
    /// `m[1]`..`m[8]` (`m[0]` unused).
    pub m: [MessageId; 9],
}

async fn user(s: &SqlStore, name: &str) -> UserId {
    let u = User {
        id: UserId::new(),
        workspace_id: WorkspaceId::DEFAULT,
        username: name.into(),
        display_name: name.into(),
        avatar_url: None,
        created_at: Millis(BASE),
    };
    s.create_user(&u, "$argon2id$fake").await.expect("user");
    u.id
}

async fn conversation(s: &SqlStore, name: &str, members: &[UserId]) -> ConversationId {
    let new = NewConversation {
        id: ConversationId::new(),
        workspace_id: WorkspaceId::DEFAULT,
        kind: ConversationKind::Channel,
        name: Some(name.into()),
        topic: None,
        is_private: true,
        created_by: members[0],
        settings: ConversationSettings::default(),
        members: members
            .iter()
            .enumerate()
            .map(|(i, u)| (*u, if i == 0 { MemberRole::Owner } else { MemberRole::Member }))
            .collect(),
        dm_key: None,
        at: Millis(BASE),
    };
    s.create_conversation(&new).await.expect("conversation").0.id
}

async fn send(
    s: &SqlStore,
    i: i64,
    conv: ConversationId,
    author: UserId,
    text: &str,
    mentions: Mentions,
    attachment_ids: Vec<AttachmentId>,
) -> MessageId {
    let m = NewMessage {
        id: MessageId::new(),
        event_id: EventId::new(),
        conversation_id: conv,
        user_id: author,
        client_msg_id: Some(format!("c-{i}")),
        thread_root_id: None,
        text: text.into(),
        kind: "default".into(),
        mentions,
        attachment_ids,
        at: at(i),
    };
    match s.append_messages(&[m]).await.expect("append").pop().expect("one").expect("send") {
        SendOutcome::Created { message, .. } => message.id,
        SendOutcome::Duplicate { .. } => panic!("duplicate"),
    }
}

/// A `PENDING` upload of `uploader` in `conv`.
async fn upload(s: &SqlStore, conv: ConversationId, uploader: UserId) -> AttachmentId {
    let id = AttachmentId::new();
    let mut a = Attachment {
        id,
        conversation_id: conv,
        uploader_id: uploader,
        message_id: None,
        name: "budget.xlsx".into(),
        content_type: "application/octet-stream".into(),
        size: 0,
        width: None,
        height: None,
        sha256: String::new(),
        object_key: format!("{conv}/{id}"),
        status: AttachmentStatus::Uploading,
        created_at: Millis(BASE),
        deleted_at: None,
    };
    s.insert_attachment(&a).await.expect("insert attachment");
    a.size = 10;
    a.sha256 = "ab".repeat(32);
    a.status = AttachmentStatus::Pending;
    assert!(s.complete_upload(&a).await.expect("complete upload"));
    id
}

/// Seeds the corpus of the module documentation.
pub async fn seed(s: &SqlStore) -> Corpus {
    let (alice, bob, carol, dave) =
        (user(s, "alice").await, user(s, "bob").await, user(s, "carol").await, user(s, "dave").await);
    let general = conversation(s, "general", &[alice, bob, carol]).await;
    let secret = conversation(s, "secret", &[bob, dave]).await;
    let lunch = conversation(s, "lunch", &[alice, carol]).await;
    let none = Mentions::default;
    let file = upload(s, general, bob).await;
    let m = [
        MessageId::default(),
        send(s, 1, general, alice, "Quarterly budget review tomorrow", none(), vec![]).await,
        send(s, 2, general, bob, "Budget spreadsheet attached", none(), vec![file]).await,
        send(
            s,
            3,
            general,
            carol,
            "@alice please review the budget",
            Mentions { user_ids: vec![alice], channel: false },
            vec![],
        )
        .await,
        send(s, 4, secret, bob, "Secret budget numbers", none(), vec![]).await,
        send(s, 5, lunch, carol, "Lunch plans tomorrow", none(), vec![]).await,
        send(
            s,
            6,
            general,
            bob,
            "@channel office closed tomorrow",
            Mentions { user_ids: vec![], channel: true },
            vec![],
        )
        .await,
        send(s, 7, general, alice, "zebra crossing", none(), vec![]).await,
        send(s, 8, general, bob, "walrus sighting", none(), vec![]).await,
    ];
    Corpus { alice, bob, carol, dave, general, secret, lunch, m }
}

/// Edits m7 to "giraffe crossing" and deletes m8.
pub async fn edit_and_delete(s: &SqlStore, c: &Corpus) {
    let edit = MessageEdit {
        id: c.m[7],
        editor: c.alice,
        text: "giraffe crossing".into(),
        mentions: Mentions::default(),
        at: at(20),
        event_id: EventId::new(),
    };
    s.edit_message(&edit).await.expect("edit");
    s.delete_message(c.m[8], c.bob, at(21)).await.expect("delete").expect("deleted now");
}

/// A query by `searcher` for the words of `q` (none when empty), no filters, limit 100.
pub fn query(searcher: UserId, q: &str) -> SearchQuery {
    SearchQuery {
        searcher,
        terms: if q.is_empty() { Vec::new() } else { terms(q).expect("terms") },
        conversation_id: None,
        author_id: None,
        from: None,
        to: None,
        attachments: None,
        mentions: MentionFilter::Anyone,
        after: None,
        limit: 100,
    }
}

/// The message numbers of a search's hits, in order.
pub async fn run(engine: &dyn SearchEngine, c: &Corpus, q: &SearchQuery) -> Vec<usize> {
    let page = engine.search(q).await.expect("search");
    page.hits
        .iter()
        .map(|h| c.m.iter().position(|m| *m == h.message_id).unwrap_or_else(|| panic!("unknown hit {h:?}")))
        .collect()
}

/// Every query of the corpus before the edit and the delete, with its known answer (newest
/// first).
pub async fn check_seeded(e: &dyn SearchEngine, c: &Corpus) {
    let alice = |q: &str| query(c.alice, q);
    assert_eq!(run(e, c, &alice("budget")).await, [3, 2, 1], "alice never sees the secret conversation's m4");
    assert_eq!(run(e, c, &alice("BUDGET!")).await, [3, 2, 1], "case and punctuation do not matter");
    assert_eq!(run(e, c, &query(c.bob, "budget")).await, [4, 3, 2, 1]);
    assert_eq!(run(e, c, &query(c.dave, "budget")).await, [4], "dave reads only the secret conversation");
    assert_eq!(run(e, c, &alice("budget review")).await, [3, 1], "every word must occur");
    assert_eq!(run(e, c, &alice("budget giraffe")).await, Vec::<usize>::new());
    assert_eq!(run(e, c, &alice("budg")).await, Vec::<usize>::new(), "whole words only");
    assert_eq!(run(e, c, &alice("tomorrow")).await, [6, 5, 1]);
    assert_eq!(run(e, c, &alice("zebra")).await, [7]);
    assert_eq!(run(e, c, &alice("walrus")).await, [8]);

    let mut q = alice("budget");
    q.conversation_id = Some(c.general);
    q.author_id = Some(c.bob);
    assert_eq!(run(e, c, &q).await, [2], "conversation and author filters");
    let mut q = alice("budget");
    q.conversation_id = Some(c.secret);
    assert_eq!(run(e, c, &q).await, Vec::<usize>::new(), "a conversation filter never opens a foreign one");
    let mut q = alice("tomorrow");
    (q.from, q.to) = (Some(at(5)), Some(at(7)));
    assert_eq!(run(e, c, &q).await, [6, 5], "from is inclusive, to exclusive");
    let mut q = alice("");
    q.to = Some(at(2));
    assert_eq!(run(e, c, &q).await, [1], "filters without words");
    let mut q = alice("budget");
    q.attachments = Some(AttachmentFilter::With);
    assert_eq!(run(e, c, &q).await, [2]);
    q.attachments = Some(AttachmentFilter::Without);
    assert_eq!(run(e, c, &q).await, [3, 1]);

    let mut q = alice("");
    q.mentions = MentionFilter::Searcher;
    assert_eq!(run(e, c, &q).await, [6, 3], "@alice and @channel mention alice");
    let mut q = query(c.carol, "");
    q.mentions = MentionFilter::Searcher;
    assert_eq!(run(e, c, &q).await, [6], "only @channel mentions carol");
    let mut q = query(c.dave, "");
    q.mentions = MentionFilter::Searcher;
    assert_eq!(run(e, c, &q).await, Vec::<usize>::new(), "the @channel in general is not dave's");
    let mut q = alice("review");
    q.mentions = MentionFilter::Searcher;
    assert_eq!(run(e, c, &q).await, [3]);

    // Keyset pages, newest first.
    let mut q = query(c.bob, "budget");
    q.limit = 3;
    let page = e.search(&q).await.expect("page 1");
    let ids: Vec<_> = page.hits.iter().map(|h| h.message_id).collect();
    assert_eq!(ids, [c.m[4], c.m[3], c.m[2]]);
    assert_eq!(page.next, Some(SearchCursor { created_at: at(2), message_id: c.m[2] }));
    assert_eq!(page.hits[0].conversation_id, c.secret);
    assert_eq!(page.hits[0].created_at, at(4));
    q.after = page.next;
    let page = e.search(&q).await.expect("page 2");
    assert_eq!(page.hits.iter().map(|h| h.message_id).collect::<Vec<_>>(), [c.m[1]]);
    assert_eq!(page.next, None, "the last page has no cursor");
}

/// The queries whose answers the edit of m7 and the delete of m8 change.
pub async fn check_changed(e: &dyn SearchEngine, c: &Corpus) {
    let alice = |q: &str| query(c.alice, q);
    assert_eq!(run(e, c, &alice("zebra")).await, Vec::<usize>::new(), "an edited message is not found by its old text");
    assert_eq!(run(e, c, &alice("giraffe")).await, [7], "an edited message is found by its new text");
    assert_eq!(run(e, c, &alice("crossing")).await, [7]);
    assert_eq!(run(e, c, &alice("walrus")).await, Vec::<usize>::new(), "a deleted message is never found");
    let q = query(c.bob, "");
    assert_eq!(run(e, c, &q).await, [7, 6, 4, 3, 2, 1], "nor by filters alone");
    assert_eq!(run(e, c, &alice("budget")).await, [3, 2, 1], "the rest is unchanged");
}
