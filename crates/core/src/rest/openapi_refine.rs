//! Schema refinements the derive cannot express, so the document states what the server
//! really validates (and a generator such as Schemathesis produces mostly valid input):
//!
//! - patterns for rules on trimmed or character-class-restricted text (channel names,
//!   display names, message texts and types, emoji), built from the exact character sets
//!   the server's checks use: Unicode `White_Space` (Rust's `str::trim` and
//!   `char::is_whitespace`) and the control characters (`char::is_control`, category `Cc`);
//! - `POST /api/v1/conversations` as one variant per `type` (`CHANNEL` needs a name, a `DM`
//!   exactly one other member, a `GROUP_DM` at least two);
//! - `POST /oauth2/token` as one variant per `grant_type`, with the fields each grant needs.
//!
//! Limits in bytes (UTF-8) appear as `maxLength` (which counts characters): exact for ASCII,
//! and never rejecting what the server accepts.

use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::schema::{ArrayBuilder, Object, ObjectBuilder, OneOfBuilder, Schema, Type};
use utoipa::openapi::{OpenApi, RefOr};

/// Unicode `White_Space`: what `str::trim` removes and `char::is_whitespace` matches.
const WS: &str = r"\t\n\u000B\f\r\u0020\u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000";
/// Control characters (`char::is_control`: general category `Cc`).
const CTRL: &str = r"\u0000-\u001F\u007F-\u009F";
/// Whitespace or control characters.
const WS_OR_CTRL: &str = r"\u0000-\u0020\u007F-\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000";

/// Control characters but line breaks and tabs (refused in message texts and topics).
const CTRL_NO_BREAKS: &str = r"\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F";
/// Invisible characters that do not make a text non-blank (zero-width space/joiners, word
/// joiner, BOM, soft hyphen).
const INVISIBLE: &str = r"\u00AD\u200B-\u200D\u2060\uFEFF";
/// Bidirectional overrides and isolates (refused in names).
const BIDI: &str = r"\u202A-\u202E\u2066-\u2069";

/// Message text: some character is neither whitespace, invisible nor a control character,
/// and no control characters but line breaks and tabs.
pub(super) fn not_blank_pattern() -> String {
    format!("^[^{CTRL_NO_BREAKS}]*[^{WS}{CTRL}{INVISIBLE}][^{CTRL_NO_BREAKS}]*$")
}

/// Channel name: once trimmed, 1..=80 characters, none a control or bidi character.
pub(super) fn channel_name_pattern() -> String {
    format!("^[{WS}]*[^{WS_OR_CTRL}{BIDI}](?:[^{CTRL}{BIDI}]{{0,78}}[^{WS_OR_CTRL}{BIDI}])?[{WS}]*$")
}

/// Display name: once trimmed at most 64 characters, none a control or bidi character
/// (blank means "the username").
pub(super) fn display_name_pattern() -> String {
    format!("^[{WS}]*(?:[^{WS_OR_CTRL}{BIDI}](?:[^{CTRL}{BIDI}]{{0,62}}[^{WS_OR_CTRL}{BIDI}])?)?[{WS}]*$")
}

/// Emoji: a `:shortcode:` of `[a-z0-9_+-]`, or emoji characters: no whitespace, control or
/// bidi characters, no ASCII but the digits, `#` and `*` of keycaps, not only invisible ones.
pub(super) fn emoji_pattern() -> String {
    let not_allowed = format!(r"\u0000-\u0022\u0024-\u0029\u002B-\u002F\u003A-\u007F{WS}{CTRL}{BIDI}");
    format!("^(?::[a-z0-9_+-]+:|[^{not_allowed}]*[^{not_allowed}{INVISIBLE}][^{not_allowed}]*)$")
}

/// Client-defined message type: no control characters.
pub(super) fn message_type_pattern() -> String {
    format!("^[^{CTRL}]+$")
}

/// The inline object schema `name` of the components.
fn component<'a>(doc: &'a mut OpenApi, name: &str) -> &'a mut Object {
    let schemas = &mut doc.components.as_mut().expect("components").schemas;
    match schemas.get_mut(name) {
        Some(RefOr::T(Schema::Object(o))) => o,
        _ => panic!("component schema {name} is an inline object"),
    }
}

/// The inline object schema of `object`'s property `name`.
fn property<'a>(object: &'a mut Object, name: &str) -> &'a mut Object {
    match object.properties.get_mut(name) {
        Some(RefOr::T(Schema::Object(o))) => o,
        _ => panic!("property {name} is an inline object schema"),
    }
}

fn string(description: &str) -> RefOr<Schema> {
    ObjectBuilder::new().schema_type(Type::String).description(Some(description)).into()
}

fn one_value(value: &str, description: &str) -> RefOr<Schema> {
    ObjectBuilder::new().schema_type(Type::String).enum_values(Some([value])).description(Some(description)).into()
}

/// `POST /api/v1/conversations`: one variant per `type`, from the derived object.
fn create_conversation(doc: &mut OpenApi) {
    let base = component(doc, "CreateConversationRequest").clone();
    let member_ids = |min: usize, max: Option<usize>, description: &str| -> RefOr<Schema> {
        ArrayBuilder::new()
            .items(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(utoipa::openapi::KnownFormat::Uuid))),
            )
            .min_items(Some(min))
            .max_items(max)
            .description(Some(description))
            .into()
    };
    let mut channel = base.clone();
    channel.description = Some("A channel: the caller becomes its owner, `memberIds` its members.".into());
    channel.properties.insert("type".into(), one_value("CHANNEL", "A channel"));
    {
        let name = property(&mut channel, "name");
        name.schema_type = Type::String.into();
        name.min_length = None;
        name.max_length = None;
        name.pattern = Some(channel_name_pattern());
    }
    channel.required = vec!["type".into(), "name".into()];

    // DMs ignore the channel fields: they are accepted (when well-typed) but unconstrained.
    let dm_like = |kind: &str, description: &str, members: RefOr<Schema>| {
        let mut o = base.clone();
        o.description = Some(description.into());
        o.properties.insert("type".into(), one_value(kind, description));
        o.properties.insert("memberIds".into(), members);
        for field in ["name", "topic"] {
            let p = property(&mut o, field);
            p.min_length = None;
            p.max_length = None;
            p.pattern = None;
            p.description = Some("Ignored for DMs and group DMs.".into());
        }
        o.required = vec!["type".into(), "memberIds".into()];
        o
    };
    let dm = dm_like(
        "DM",
        "A DM (opened, or the existing one returned) with exactly one other user.",
        member_ids(1, Some(1), "The other user (not the caller)"),
    );
    let group = dm_like(
        "GROUP_DM",
        "A group DM of the caller and at least two other users (3..=16 distinct members in all).",
        member_ids(2, None, "The other members"),
    );
    let one_of = OneOfBuilder::new()
        .item(Schema::Object(channel))
        .item(Schema::Object(dm))
        .item(Schema::Object(group))
        .description(base.description.clone());
    doc.components.as_mut().expect("components").schemas.insert("CreateConversationRequest".into(), one_of.into());
}

/// `POST /oauth2/token`: one variant per `grant_type` (form fields; the client may
/// authenticate by HTTP Basic instead of `client_id`/`client_secret`).
fn oauth_token(doc: &mut OpenApi) {
    let base = component(doc, "OAuthTokenRequest").clone();
    let common = [
        ("scope", "Requested scope"),
        ("client_id", "Client id (when not sent by HTTP Basic)"),
        ("client_secret", "Client secret (when not sent by HTTP Basic)"),
    ];
    let variant = |grant: &str, fields: &[(&str, &str)], description: &str| {
        let mut o = ObjectBuilder::new()
            .schema_type(Type::Object)
            .description(Some(description))
            .property("grant_type", one_value(grant, "The grant"))
            .required("grant_type");
        for (name, text) in fields {
            let mut field = ObjectBuilder::new().schema_type(Type::String).description(Some(*text));
            if *name == "refresh_token" {
                // An empty token is rejected ("empty token") before any lookup.
                field = field.min_length(Some(1));
            }
            o = o.property(*name, field).required(*name);
        }
        for (name, text) in common {
            o = o.property(name, string(text));
        }
        Schema::Object(o.build())
    };
    let one_of = OneOfBuilder::new()
        .item(variant(
            "password",
            &[("username", "Username"), ("password", "Password")],
            "Resource owner password credentials grant",
        ))
        .item(variant("refresh_token", &[("refresh_token", "A refresh token")], "Refresh token grant"))
        .item(variant(
            "client_credentials",
            &[],
            "Client credentials grant: the client authenticates by HTTP Basic or client_id and client_secret",
        ))
        .description(base.description.clone());
    doc.components.as_mut().expect("components").schemas.insert("OAuthTokenRequest".into(), one_of.into());
}

fn operations_mut(doc: &mut OpenApi) -> impl Iterator<Item = &mut Operation> {
    doc.paths.paths.values_mut().flat_map(|item| {
        [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch].into_iter().flatten()
    })
}

/// Applies every refinement.
///
/// # Panics
/// When a refined schema is not where it is expected (a bug caught by the tests).
pub(super) fn apply(doc: &mut OpenApi) {
    property(component(doc, "RegisterRequest"), "displayName").pattern = Some(display_name_pattern());
    property(component(doc, "PatchConversationRequest"), "name").pattern = Some(channel_name_pattern());
    for schema in ["SendMessageRequest", "EditMessageRequest"] {
        property(component(doc, schema), "text").pattern = Some(not_blank_pattern());
    }
    property(component(doc, "SendMessageRequest"), "type").pattern = Some(message_type_pattern());
    create_conversation(doc);
    oauth_token(doc);
    for op in operations_mut(doc) {
        for p in op.parameters.iter_mut().flatten() {
            let RefOr::T(p) = p else { continue };
            if p.name == "emoji" && matches!(p.parameter_in, ParameterIn::Path) {
                match p.schema.as_mut() {
                    Some(RefOr::T(Schema::Object(o))) => o.pattern = Some(emoji_pattern()),
                    _ => panic!("emoji parameter has an inline string schema"),
                }
            }
        }
    }
}
