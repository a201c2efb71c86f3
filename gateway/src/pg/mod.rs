//! The PostgreSQL wire protocol (port 9071): `psql`, `psycopg` and other PostgreSQL clients
//! run read-only SQL over the same tables as `POST /query` ([`crate::query`]).
//!
//! pgwire speaks the protocol; `datafusion-postgres` plans statements (simple and extended
//! protocol, parameters, `SET`/`SHOW`, transactions, cursors) and `datafusion-pg-catalog`
//! answers what psql's `\d` and drivers ask of `pg_catalog`. What is perdure's here: the
//! statements allowed (reads only: everything else gets SQLSTATE 25006 naming it), the
//! statement timeout (the client's `statement_timeout`, at most `admin.query-timeout`),
//! errors classified by SQLSTATE, and authentication: with `admin.auth-tokens` set, a
//! client gives one as its password (any user and database name); without, the port is open
//! and may only bind loopback (the configuration refuses anything else). A cancel request (psql's
//! Ctrl-C) stops the running statement.
//!
//! Owns: the listener and connections. Does not own: the tables (`query/`).

use std::fmt::Debug;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use async_trait::async_trait;
use datafusion::common::ParamValues;
use datafusion::error::DataFusionError;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::SessionContext;
use datafusion::sql::sqlparser::ast::{CopyTarget, Set, Statement};
use datafusion_postgres::hooks::HookClient;
use datafusion_postgres::hooks::cursor::CursorStatementHook;
use datafusion_postgres::hooks::set_show::SetShowHook;
use datafusion_postgres::hooks::transactions::TransactionStatementHook;
use datafusion_postgres::pgwire;
use datafusion_postgres::{DfSessionService, QueryHook};
use futures::{Sink, Stream};
use pgwire::api::auth::{
    DefaultServerParameterProvider, StartupHandler, finish_authentication, protocol_negotiation,
    save_startup_parameters_to_metadata,
};
use pgwire::api::cancel::DefaultCancelHandler;
use pgwire::api::portal::Portal;
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use pgwire::api::results::Response;
use pgwire::api::store::PortalStore;
use pgwire::api::{
    ClientInfo, ClientPortalStore, ConnectionManager, ErrorHandler, PgWireConnectionState, PgWireServerHandlers,
    PidSecretKeyGenerator, RandomPidSecretKeyGenerator,
};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::startup::Authentication;
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};
use tokio::net::TcpListener;

use crate::query::QueryEngine;
use tokio::sync::watch;

mod copy;

/// What the PostgreSQL front end needs besides the tables.
#[derive(Clone, Debug)]
pub struct PgSettings {
    /// The longest a statement may run (a client's `statement_timeout` can only lower it).
    pub query_timeout: Duration,
    /// Passwords accepted; `None` accepts every connection without one (loopback only).
    pub tokens: Option<Vec<String>>,
}

/// Accepts PostgreSQL connections on `listener` until `shutdown` changes. The session (with
/// `pg_catalog`, tens of MB and tens of ms to build) is made when the first client connects,
/// so a server nobody queries over psql does not pay for it.
pub async fn serve(
    listener: TcpListener,
    query: QueryEngine,
    settings: PgSettings,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut ready: Option<(Arc<Handlers>, SessionContext)> = None;
    loop {
        tokio::select! {
            _ = shutdown.changed() => {
                // pg_catalog's schema holds the catalog that holds it: let go of the tables
                // (and the records they read) so the database can close.
                if let Some((_, ctx)) = &ready {
                    crate::query::release(ctx);
                }
                return;
            }
            accepted = listener.accept() => match accepted {
                Ok((socket, peer)) => {
                    let _ = socket.set_nodelay(true);
                    if ready.is_none() {
                        let q = query.clone();
                        match tokio::task::spawn_blocking(move || q.pg_session()).await {
                            Ok(Ok(ctx)) => ready = Some((Arc::new(Handlers::new(ctx.clone(), settings.clone())), ctx)),
                            Ok(Err(e)) => tracing::error!("PostgreSQL port: cannot set up the SQL session: {e}"),
                            Err(e) => tracing::error!("PostgreSQL port: setting up the SQL session failed: {e}"),
                        }
                    }
                    let Some((handlers, _)) = &ready else { continue };
                    let handlers = handlers.clone();
                    tokio::spawn(async move {
                        if let Err(e) = pgwire::tokio::process_socket(socket, None, handlers).await {
                            tracing::debug!("PostgreSQL connection from {peer} ended: {e}");
                        }
                    });
                }
                Err(e) => {
                    tracing::warn!("PostgreSQL port: cannot accept a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
}

struct Handlers {
    session: Arc<Session>,
    startup: Arc<Startup>,
    cancel: Arc<DefaultCancelHandler>,
}

impl Handlers {
    fn new(ctx: SessionContext, settings: PgSettings) -> Self {
        let hooks: Vec<Arc<dyn QueryHook>> = vec![
            Arc::new(ReadOnly),
            Arc::new(CursorStatementHook),
            Arc::new(SetShowHook),
            Arc::new(TransactionStatementHook),
        ];
        let inner = Arc::new(DfSessionService::new_with_hooks(Arc::new(ctx), hooks));
        let connections = Arc::new(ConnectionManager::new());
        let mut parameters = DefaultServerParameterProvider::default();
        parameters.server_version = format!("16.6 (perdure {})", env!("CARGO_PKG_VERSION"));
        parameters.default_transaction_read_only = true;
        parameters.is_superuser = false;
        Self {
            session: Arc::new(Session { inner, limit: settings.query_timeout }),
            startup: Arc::new(Startup {
                tokens: settings.tokens,
                parameters,
                connections: connections.clone(),
                keys: RandomPidSecretKeyGenerator::default(),
            }),
            cancel: Arc::new(DefaultCancelHandler::new(connections)),
        }
    }
}

impl PgWireServerHandlers for Handlers {
    fn simple_query_handler(&self) -> Arc<impl SimpleQueryHandler> {
        self.session.clone()
    }

    fn extended_query_handler(&self) -> Arc<impl ExtendedQueryHandler> {
        self.session.clone()
    }

    fn startup_handler(&self) -> Arc<impl StartupHandler> {
        self.startup.clone()
    }

    fn error_handler(&self) -> Arc<impl ErrorHandler> {
        Arc::new(Classify)
    }

    fn cancel_handler(&self) -> Arc<impl pgwire::api::cancel::CancelHandler> {
        self.cancel.clone()
    }
}

/// Without tokens, open; with them, a cleartext password that must be one of them.
struct Startup {
    tokens: Option<Vec<String>>,
    parameters: DefaultServerParameterProvider,
    connections: Arc<ConnectionManager>,
    keys: RandomPidSecretKeyGenerator,
}

impl Startup {
    async fn accept<C>(&self, client: &mut C) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let (pid, secret) = self.keys.generate(client);
        client.set_pid_and_secret_key(pid, secret.clone());
        // The handle lets a cancel request (pid + secret) reach the connection's statement;
        // the guard forgets the connection when it closes.
        let (handle, guard) = self.connections.register(pid, secret);
        client.session_extensions().insert(handle);
        client.session_extensions().insert(guard);
        finish_authentication(client, &self.parameters).await
    }
}

#[async_trait]
impl StartupHandler for Startup {
    async fn on_startup<C>(&self, client: &mut C, message: PgWireFrontendMessage) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        use futures::SinkExt;
        match message {
            PgWireFrontendMessage::Startup(ref startup) => {
                protocol_negotiation(client, startup).await?;
                save_startup_parameters_to_metadata(client, startup);
                if self.tokens.is_none() {
                    return self.accept(client).await;
                }
                client.set_state(PgWireConnectionState::AuthenticationInProgress);
                client.send(PgWireBackendMessage::Authentication(Authentication::CleartextPassword)).await?;
            }
            PgWireFrontendMessage::PasswordMessageFamily(password) => {
                let given = password.into_password()?.password;
                let tokens = self.tokens.as_deref().unwrap_or_default();
                if crate::auth::is_one_of(tokens, &given) {
                    return self.accept(client).await;
                }
                return Err(PgWireError::UserError(Box::new(ErrorInfo::new(
                    "FATAL".into(),
                    "28P01".into(),
                    "password authentication failed: give one of perdure's admin.auth-tokens as the password".into(),
                ))));
            }
            _ => {}
        }
        Ok(())
    }
}

/// A one-row, one-column answer to `SHOW name`.
fn show(name: &str, value: &str) -> PgWireResult<Response> {
    use pgwire::api::results::{DataRowEncoder, FieldFormat, FieldInfo, QueryResponse};
    let fields = Arc::new(vec![FieldInfo::new(name.into(), None, None, pgwire::api::Type::TEXT, FieldFormat::Text)]);
    let mut encoder = DataRowEncoder::new(fields.clone());
    encoder.encode_field(&Some(value))?;
    let row = encoder.take_row();
    Ok(Response::Query(QueryResponse::new(fields, futures::stream::iter([Ok(row)]))))
}

/// Runs statements through `datafusion-postgres`, each within the statement timeout: the
/// time to plan and start it (which reads the tables it scans) and to stream its rows.
struct Session {
    inner: Arc<DfSessionService>,
    limit: Duration,
}

impl Session {
    /// The client's `statement_timeout` (set with `SET`), at most the server's limit.
    fn timeout(&self, client: &impl ClientInfo) -> Duration {
        let asked = client.metadata().get("statement_timeout_ms").and_then(|v| v.parse::<u64>().ok());
        asked.map_or(self.limit, |ms| self.limit.min(Duration::from_millis(ms)))
    }
}

fn timed_out(limit: Duration) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "ERROR".into(),
        "57014".into(),
        format!(
            "canceling statement due to statement timeout ({}; the server allows at most admin.query-timeout)",
            humantime::format_duration(limit)
        ),
    )))
}

/// Waits (within the deadline) for a response's first row, so that the work before it (an
/// aggregate's whole computation, say) runs while a cancel request can still stop it, and
/// bounds the rest of its rows by the deadline.
async fn bounded(response: Response, deadline: tokio::time::Instant, limit: Duration) -> PgWireResult<Response> {
    use futures::StreamExt;
    match response {
        Response::Query(mut query) => {
            let mut rows = std::mem::replace(&mut query.data_rows, Box::pin(futures::stream::empty()));
            let first = tokio::time::timeout_at(deadline, rows.next()).await.map_err(|_| timed_out(limit))?;
            let first = match first {
                Some(Err(e)) => return Err(e),
                other => other,
            };
            let rows = futures::stream::iter(first).chain(rows);
            query.data_rows = Box::pin(Deadline {
                rows: Box::pin(rows),
                sleep: Box::pin(tokio::time::sleep_until(deadline)),
                limit,
                done: false,
            });
            Ok(Response::Query(query))
        }
        Response::CopyOut(mut copy) => {
            let data = std::mem::replace(&mut copy.data_stream, Box::pin(futures::stream::empty()));
            copy.data_stream = Box::pin(Deadline {
                rows: data,
                sleep: Box::pin(tokio::time::sleep_until(deadline)),
                limit,
                done: false,
            });
            Ok(Response::CopyOut(copy))
        }
        other => Ok(other),
    }
}

/// A stream (of rows, of COPY data) that ends with a statement-timeout error once its
/// deadline passes.
struct Deadline<T> {
    rows: Pin<Box<dyn Stream<Item = PgWireResult<T>> + Send>>,
    sleep: Pin<Box<tokio::time::Sleep>>,
    limit: Duration,
    done: bool,
}

impl<T> Stream for Deadline<T> {
    type Item = PgWireResult<T>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        if self.sleep.as_mut().poll(cx).is_ready() {
            self.done = true;
            return Poll::Ready(Some(Err(timed_out(self.limit))));
        }
        self.rows.as_mut().poll_next(cx)
    }
}

#[async_trait]
impl SimpleQueryHandler for Session {
    async fn do_query<C>(&self, client: &mut C, query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let limit = self.timeout(client);
        let deadline = crate::query::deadline_after(limit);
        let responses = tokio::time::timeout_at(deadline, SimpleQueryHandler::do_query(&*self.inner, client, query))
            .await
            .map_err(|_| timed_out(limit))??;
        let mut out = Vec::with_capacity(responses.len());
        for response in responses {
            out.push(bounded(response, deadline, limit).await?);
        }
        Ok(out)
    }
}

#[async_trait]
impl ExtendedQueryHandler for Session {
    type Statement = <DfSessionService as ExtendedQueryHandler>::Statement;
    type QueryParser = <DfSessionService as ExtendedQueryHandler>::QueryParser;

    fn query_parser(&self) -> Arc<Self::QueryParser> {
        self.inner.query_parser()
    }

    async fn do_query<C>(
        &self,
        client: &mut C,
        portal: &Portal<Self::Statement>,
        max_rows: usize,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let limit = self.timeout(client);
        let deadline = crate::query::deadline_after(limit);
        let response =
            tokio::time::timeout_at(deadline, ExtendedQueryHandler::do_query(&*self.inner, client, portal, max_rows))
                .await
                .map_err(|_| timed_out(limit))??;
        bounded(response, deadline, limit).await
    }
}

/// Lets reads through and refuses the rest, before anything plans them.
struct ReadOnly;

/// Settings a client may `SET` (drivers set some on connect); all apply to its own session.
const SETTABLE: &[&str] = &[
    "statement_timeout",
    "datestyle",
    "bytea_output",
    "intervalstyle",
    "application_name",
    "extra_float_digits",
    "search_path",
    "client_encoding",
    "client_min_messages",
    "standard_conforming_strings",
];

fn read_only(what: String) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "ERROR".into(),
        "25006".into(),
        format!("perdure's SQL is read-only: {what}"),
    )))
}

/// Why `statement` is refused, if it is.
fn refusal(statement: &Statement) -> Option<PgWireError> {
    match statement {
        Statement::Query(_)
        | Statement::Explain { .. }
        | Statement::ExplainTable { .. }
        | Statement::ShowVariable { .. }
        | Statement::ShowStatus { .. }
        | Statement::ShowCatalogs { .. }
        | Statement::ShowTables { .. }
        | Statement::ShowColumns { .. }
        | Statement::StartTransaction { .. }
        | Statement::Commit { .. }
        | Statement::Rollback { .. }
        | Statement::Declare { .. }
        | Statement::Fetch { .. }
        | Statement::Close { .. } => None,
        Statement::Set(Set::SetTimeZone { local: false, .. }) => None,
        Statement::Set(Set::SingleAssignment { scope: None, hivevar: false, variable, .. }) => {
            let name = variable.to_string().to_lowercase();
            if SETTABLE.contains(&name.as_str()) {
                None
            } else {
                Some(read_only(format!(
                    "\"{name}\" is not a setting a session can change here (it can set {})",
                    SETTABLE.join(", ")
                )))
            }
        }
        Statement::Set(other) => Some(read_only(format!("\"{other}\" is not a setting a session can change here"))),
        other => {
            let text = other.to_string();
            let verb: String = text.split_whitespace().take(2).collect::<Vec<_>>().join(" ");
            Some(read_only(format!(
                "{verb} … is refused; only SELECT (and SHOW, EXPLAIN, SET of session settings, BEGIN/COMMIT, cursors) run here"
            )))
        }
    }
}

#[async_trait]
impl QueryHook for ReadOnly {
    async fn handle_simple_query(
        &self,
        statement: &Statement,
        ctx: &SessionContext,
        client: &mut dyn HookClient,
    ) -> Option<PgWireResult<Response>> {
        use pgwire::api::results::Tag;
        match statement {
            // Drivers (psycopg) drop the statements they prepared this way: they are the
            // connection's own, nothing is written.
            Statement::Deallocate { name, .. } => {
                if !name.value.eq_ignore_ascii_case("all") {
                    client.portal_store().rm_statement(&name.value);
                }
                Some(Ok(Response::Execution(Tag::new("DEALLOCATE"))))
            }
            Statement::Discard { .. } => Some(Ok(Response::Execution(Tag::new("DISCARD ALL")))),
            Statement::ShowVariable { variable }
                if variable.len() == 1 && variable[0].value.eq_ignore_ascii_case("server_version") =>
            {
                Some(show("server_version", &format!("16.6 (perdure {})", env!("CARGO_PKG_VERSION"))))
            }
            Statement::Copy { to: true, target: CopyTarget::Stdout, source, options, legacy_options, .. }
                if legacy_options.is_empty() =>
            {
                Some(copy::copy_out(ctx, source, options).await)
            }
            _ => refusal(statement).map(Err),
        }
    }

    async fn handle_extended_parse_query(
        &self,
        statement: &Statement,
        _ctx: &SessionContext,
        _client: &(dyn ClientInfo + Send + Sync),
    ) -> Option<PgWireResult<LogicalPlan>> {
        refusal(statement).map(Err)
    }

    async fn handle_extended_query(
        &self,
        statement: &Statement,
        _plan: &LogicalPlan,
        _params: &ParamValues,
        _ctx: &SessionContext,
        _client: &mut dyn HookClient,
    ) -> Option<PgWireResult<Response>> {
        refusal(statement).map(Err)
    }
}

/// Gives DataFusion's errors the SQLSTATE a PostgreSQL client expects (syntax error,
/// unknown table or column, …) instead of a generic internal error.
struct Classify;

impl ErrorHandler for Classify {
    fn on_error<C>(&self, _client: &C, error: &mut PgWireError)
    where
        C: ClientInfo,
    {
        let PgWireError::ApiError(inner) = error else { return };
        let (code, message) = if let Some(e) = inner.downcast_ref::<DataFusionError>() {
            (sqlstate(e), e.find_root().to_string())
        } else if inner.downcast_ref::<datafusion::sql::sqlparser::parser::ParserError>().is_some() {
            ("42601", inner.to_string())
        } else {
            ("XX000", inner.to_string())
        };
        *error = PgWireError::UserError(Box::new(ErrorInfo::new("ERROR".into(), code.into(), message)));
    }
}

fn sqlstate(error: &DataFusionError) -> &'static str {
    match error.find_root() {
        DataFusionError::SQL(..) => "42601",
        DataFusionError::SchemaError(e, _) => match **e {
            datafusion::common::SchemaError::FieldNotFound { .. } => "42703",
            _ => "42P18",
        },
        DataFusionError::Plan(message) if message.contains("not found") && message.contains("table") => "42P01",
        DataFusionError::Plan(message) if message.contains("Invalid function") => "42883",
        DataFusionError::Plan(_) => "42804",
        DataFusionError::NotImplemented(_) => "0A000",
        DataFusionError::ResourcesExhausted(_) => "53000",
        _ => "XX000",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::parser::DFParser;
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;

    fn statement(sql: &str) -> Statement {
        let mut parsed = DFParser::parse_sql_with_dialect(sql, &PostgreSqlDialect {}).unwrap();
        match parsed.pop_front().unwrap() {
            datafusion::sql::parser::Statement::Statement(s) => *s,
            other => panic!("not a plain statement: {other:?}"),
        }
    }

    fn code(e: PgWireError) -> (String, String) {
        match e {
            PgWireError::UserError(info) => (info.code.clone(), info.message.clone()),
            other => panic!("not a user error: {other:?}"),
        }
    }

    #[test]
    fn reads_pass_and_writes_ddl_and_unknown_settings_are_refused() {
        for sql in [
            "SELECT 1",
            "SHOW statement_timeout",
            "SET statement_timeout = 100",
            "BEGIN",
            "COMMIT",
            "SET TIME ZONE 'UTC'",
        ] {
            assert!(refusal(&statement(sql)).is_none(), "{sql} should run");
        }
        for sql in [
            "INSERT INTO state VALUES (1)",
            "DELETE FROM sys_invocation",
            "UPDATE sys_deployment SET id = 'x'",
            "CREATE TABLE t (a INT)",
            "DROP TABLE state",
        ] {
            let (code, message) = code(refusal(&statement(sql)).expect(sql));
            assert_eq!(code, "25006", "{sql}");
            assert!(message.contains("read-only"), "{message}");
        }
        let (code, message) = code(refusal(&statement("SET datafusion.execution.batch_size = 1")).unwrap());
        assert_eq!(code, "25006");
        assert!(message.contains("datafusion.execution.batch_size"), "{message}");
    }
}
