//! [`AuthStore`]: signing keys, refresh tokens, OAuth2 clients.

use async_trait::async_trait;
use chat_domain::Millis;
use sea_query::{Expr, ExprTrait, Order, Query};
use sqlx::any::AnyRow;

use super::schema::{OauthClients as Oc, RefreshTokens as Rt, SigningKeys as Sk};
use super::{SqlStore, db_err, execute, fetch_optional, get_i64, get_id, get_opt_i64, get_opt_str, get_str};
use crate::{AuthStore, OAuthClientRecord, RefreshTokenRecord, SigningKeyRecord, StoreError, StoreResult};

fn decode_token(row: &AnyRow) -> Result<RefreshTokenRecord, StoreError> {
    let jti = get_str(row, "jti")?;
    Ok(RefreshTokenRecord {
        // Tokens from before families were recorded are their own family.
        family_id: get_opt_str(row, "family_id")?.unwrap_or_else(|| jti.clone()),
        jti,
        user_id: get_id(row, "user_id")?,
        workspace_id: get_id(row, "workspace_id")?,
        issued_at: Millis(get_i64(row, "issued_at")?),
        expires_at: Millis(get_i64(row, "expires_at")?),
        revoked_at: get_opt_i64(row, "revoked_at")?.map(Millis),
    })
}

fn token_insert(t: &RefreshTokenRecord) -> sea_query::InsertStatement {
    Query::insert()
        .into_table(Rt::Table)
        .columns([Rt::Jti, Rt::UserId, Rt::WorkspaceId, Rt::IssuedAt, Rt::ExpiresAt, Rt::RevokedAt, Rt::FamilyId])
        .values_panic([
            t.jti.clone().into(),
            t.user_id.to_string().into(),
            t.workspace_id.to_string().into(),
            t.issued_at.0.into(),
            t.expires_at.0.into(),
            t.revoked_at.map(|m| m.0).into(),
            t.family_id.clone().into(),
        ])
        .to_owned()
}

/// `UPDATE refresh_tokens SET revoked_at = now WHERE jti = ? AND revoked_at IS NULL`.
fn revoke(jti: &str, now: Millis) -> sea_query::UpdateStatement {
    Query::update()
        .table(Rt::Table)
        .value(Rt::RevokedAt, now.0)
        .and_where(Expr::col(Rt::Jti).eq(jti))
        .and_where(Expr::col(Rt::RevokedAt).is_null())
        .to_owned()
}

#[async_trait]
impl AuthStore for SqlStore {
    async fn signing_key(&self) -> StoreResult<Option<SigningKeyRecord>> {
        let q = Query::select()
            .columns([Sk::Kid, Sk::PrivatePem, Sk::CreatedAt])
            .from(Sk::Table)
            .order_by(Sk::Generation, Order::Desc)
            .limit(1)
            .to_owned();
        // The writer (SQLite) sees its own latest commit; used right after an insert.
        match fetch_optional(self.writer(), self.dialect(), &q).await? {
            Some(r) => Ok(Some(SigningKeyRecord {
                kid: get_str(&r, "kid")?,
                private_pem: get_str(&r, "private_pem")?,
                created_at: Millis(get_i64(&r, "created_at")?),
            })),
            None => Ok(None),
        }
    }

    async fn insert_signing_key_if_absent(&self, key: &SigningKeyRecord) -> StoreResult<SigningKeyRecord> {
        if let Some(k) = self.signing_key().await? {
            return Ok(k);
        }
        // Generation 1 is the primary key: of concurrent first starts exactly one insert wins.
        let ins = Query::insert()
            .into_table(Sk::Table)
            .columns([Sk::Generation, Sk::Kid, Sk::PrivatePem, Sk::CreatedAt])
            .values_panic([
                1i64.into(),
                key.kid.clone().into(),
                key.private_pem.clone().into(),
                key.created_at.0.into(),
            ])
            .to_owned();
        match execute(self.writer(), self.dialect(), &ins).await {
            Ok(_) | Err(StoreError::Conflict(_)) => {}
            Err(e) => return Err(e),
        }
        self.signing_key().await?.ok_or_else(|| StoreError::Unexpected(anyhow::anyhow!("signing key vanished")))
    }

    async fn insert_refresh_token(&self, token: &RefreshTokenRecord) -> StoreResult<()> {
        execute(self.writer(), self.dialect(), &token_insert(token)).await.map(|_| ())
    }

    async fn refresh_token(&self, jti: &str) -> StoreResult<Option<RefreshTokenRecord>> {
        let q = Query::select()
            .columns([Rt::Jti, Rt::UserId, Rt::WorkspaceId, Rt::IssuedAt, Rt::ExpiresAt, Rt::RevokedAt, Rt::FamilyId])
            .from(Rt::Table)
            .and_where(Expr::col(Rt::Jti).eq(jti))
            .to_owned();
        let mut conn = self.reader().acquire().await.map_err(db_err)?;
        fetch_optional(&mut *conn, self.dialect(), &q).await?.as_ref().map(decode_token).transpose()
    }

    async fn rotate_refresh_token(&self, old_jti: &str, new: &RefreshTokenRecord, now: Millis) -> StoreResult<bool> {
        let d = self.dialect();
        let mut tx = self.begin().await?;
        // The conditional UPDATE is the single-use check: of concurrent rotations exactly one
        // matches the row (the others wait for its lock, then see revoked_at set).
        if execute(&mut *tx, d, &revoke(old_jti, now)).await? != 1 {
            tx.rollback().await.map_err(db_err)?;
            return Ok(false);
        }
        execute(&mut *tx, d, &token_insert(new)).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(true)
    }

    async fn revoke_refresh_token(&self, jti: &str, now: Millis) -> StoreResult<bool> {
        Ok(execute(self.writer(), self.dialect(), &revoke(jti, now)).await? == 1)
    }

    async fn revoke_refresh_family(&self, family_id: &str, now: Millis) -> StoreResult<u64> {
        let q = Query::update()
            .table(Rt::Table)
            .value(Rt::RevokedAt, now.0)
            .cond_where(
                sea_query::Cond::all()
                    .add(
                        sea_query::Cond::any()
                            .add(Expr::col(Rt::FamilyId).eq(family_id))
                            .add(Expr::col(Rt::Jti).eq(family_id)),
                    )
                    .add(Expr::col(Rt::RevokedAt).is_null()),
            )
            .to_owned();
        execute(self.writer(), self.dialect(), &q).await
    }

    async fn create_oauth_client(&self, client: &OAuthClientRecord) -> StoreResult<()> {
        let ins = Query::insert()
            .into_table(Oc::Table)
            .columns([Oc::ClientId, Oc::SecretHash, Oc::Scopes, Oc::CreatedAt])
            .values_panic([
                client.client_id.clone().into(),
                client.secret_hash.clone().into(),
                client.scopes.clone().into(),
                client.created_at.0.into(),
            ])
            .to_owned();
        match execute(self.writer(), self.dialect(), &ins).await {
            Ok(_) => Ok(()),
            Err(StoreError::Conflict(_)) => {
                Err(StoreError::Conflict(format!("OAuth client {:?} exists", client.client_id)))
            }
            Err(e) => Err(e),
        }
    }

    async fn oauth_client(&self, client_id: &str) -> StoreResult<Option<OAuthClientRecord>> {
        let q = Query::select()
            .columns([Oc::ClientId, Oc::SecretHash, Oc::Scopes, Oc::CreatedAt])
            .from(Oc::Table)
            .and_where(Expr::col(Oc::ClientId).eq(client_id))
            .to_owned();
        let mut conn = self.reader().acquire().await.map_err(db_err)?;
        match fetch_optional(&mut *conn, self.dialect(), &q).await? {
            Some(r) => Ok(Some(OAuthClientRecord {
                client_id: get_str(&r, "client_id")?,
                secret_hash: get_str(&r, "secret_hash")?,
                scopes: get_str(&r, "scopes")?,
                created_at: Millis(get_i64(&r, "created_at")?),
            })),
            None => Ok(None),
        }
    }
}
