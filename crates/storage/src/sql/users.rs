//! [`UserStore`]: workspaces and users (password hashes live in `users.password_hash`).

use async_trait::async_trait;
use chat_domain::{Millis, User, UserId, Workspace, WorkspaceId};
use sea_query::{Expr, ExprTrait, LikeExpr, Order, Query, SelectStatement};
use sqlx::any::AnyRow;

use super::schema::{Users as U, Workspaces as W};
use super::{SqlStore, db_err, execute, fetch_all, fetch_optional, get_i64, get_id, get_opt_str, get_str};
use crate::{StoreError, StoreResult, UserStore};

fn user_select() -> SelectStatement {
    Query::select()
        .columns([U::UserId, U::WorkspaceId, U::Username, U::DisplayName, U::AvatarUrl, U::PasswordHash, U::CreatedAt])
        .from(U::Table)
        .to_owned()
}

fn decode_user(row: &AnyRow) -> Result<User, StoreError> {
    Ok(User {
        id: get_id(row, "user_id")?,
        workspace_id: get_id(row, "workspace_id")?,
        username: get_str(row, "username")?,
        display_name: get_str(row, "display_name")?,
        avatar_url: get_opt_str(row, "avatar_url")?,
        created_at: Millis(get_i64(row, "created_at")?),
    })
}

/// Escapes `!`, `%` and `_` for a LIKE pattern with escape character `!`.
fn like_prefix(prefix: &str) -> String {
    let mut p = String::with_capacity(prefix.len() + 1);
    for c in prefix.chars() {
        if matches!(c, '!' | '%' | '_') {
            p.push('!');
        }
        p.push(c);
    }
    p.push('%');
    p
}

#[async_trait]
impl UserStore for SqlStore {
    async fn ensure_workspace(&self, ws: &Workspace) -> StoreResult<()> {
        let d = self.dialect();
        let exists = Query::select()
            .column(W::WorkspaceId)
            .from(W::Table)
            .and_where(Expr::col(W::WorkspaceId).eq(ws.id.to_string()))
            .to_owned();
        if fetch_optional(self.writer(), d, &exists).await?.is_some() {
            return Ok(());
        }
        let ins = Query::insert()
            .into_table(W::Table)
            .columns([W::WorkspaceId, W::Name, W::CreatedAt])
            .values_panic([ws.id.to_string().into(), ws.name.clone().into(), ws.created_at.0.into()])
            .to_owned();
        match execute(self.writer(), d, &ins).await {
            // A concurrent first start inserted it: fine.
            Ok(_) | Err(StoreError::Conflict(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn create_user(&self, user: &User, password_hash: &str) -> StoreResult<()> {
        let ins = Query::insert()
            .into_table(U::Table)
            .columns([
                U::UserId,
                U::WorkspaceId,
                U::Username,
                U::DisplayName,
                U::AvatarUrl,
                U::PasswordHash,
                U::CreatedAt,
            ])
            .values_panic([
                user.id.to_string().into(),
                user.workspace_id.to_string().into(),
                user.username.clone().into(),
                user.display_name.clone().into(),
                user.avatar_url.clone().into(),
                password_hash.into(),
                user.created_at.0.into(),
            ])
            .to_owned();
        match execute(self.writer(), self.dialect(), &ins).await {
            Ok(_) => Ok(()),
            Err(StoreError::Conflict(_)) => {
                Err(StoreError::Conflict(format!("username {:?} is taken (or the user id exists)", user.username)))
            }
            Err(e) => Err(e),
        }
    }

    async fn user(&self, id: UserId) -> StoreResult<Option<User>> {
        let q = user_select().and_where(Expr::col(U::UserId).eq(id.to_string())).to_owned();
        let mut conn = self.reader().acquire().await.map_err(db_err)?;
        fetch_optional(&mut *conn, self.dialect(), &q).await?.as_ref().map(decode_user).transpose()
    }

    async fn user_credentials(&self, ws: WorkspaceId, username: &str) -> StoreResult<Option<(User, String)>> {
        let q = user_select()
            .and_where(Expr::col(U::WorkspaceId).eq(ws.to_string()))
            .and_where(Expr::col(U::Username).eq(username))
            .to_owned();
        let mut conn = self.reader().acquire().await.map_err(db_err)?;
        match fetch_optional(&mut *conn, self.dialect(), &q).await? {
            Some(row) => Ok(Some((decode_user(&row)?, get_str(&row, "password_hash")?))),
            None => Ok(None),
        }
    }

    async fn users(&self, ids: &[UserId]) -> StoreResult<Vec<User>> {
        let mut out = Vec::with_capacity(ids.len());
        let mut conn = self.reader().acquire().await.map_err(db_err)?;
        for chunk in ids.chunks(500) {
            let q = user_select().and_where(Expr::col(U::UserId).is_in(chunk.iter().map(|i| i.to_string()))).to_owned();
            for row in fetch_all(&mut *conn, self.dialect(), &q).await? {
                out.push(decode_user(&row)?);
            }
        }
        Ok(out)
    }

    async fn search_users(&self, ws: WorkspaceId, prefix: &str, limit: i64) -> StoreResult<Vec<User>> {
        let q = user_select()
            .and_where(Expr::col(U::WorkspaceId).eq(ws.to_string()))
            .and_where(Expr::col(U::Username).like(LikeExpr::new(like_prefix(prefix)).escape('!')))
            .order_by(U::Username, Order::Asc)
            .limit(super::lim(limit))
            .to_owned();
        let mut conn = self.reader().acquire().await.map_err(db_err)?;
        fetch_all(&mut *conn, self.dialect(), &q).await?.iter().map(decode_user).collect()
    }
}
