
/*
 * darkroom: the per-thread Postgres connection.
 *
 * Runs only inside pool threads.  Each thread owns one libpq connection,
 * opened lazily, checked before use and dropped on any connection-level
 * failure so the next query reconnects.  Every wait (connect, send, result)
 * is bounded by darkroom_db_timeout with poll(), so a server that accepts
 * and never answers costs a thread at most that long.  Parameters always go
 * through PQsendQueryParams: no SQL is ever built from input.
 *
 * A multi-host conninfo (host=a,b ... target_session_attrs=read-write) is
 * libpq's: each connect tries the hosts in turn and keeps the first that
 * accepts writes, so after a failover the next connect finds the new
 * primary; with connect_timeout each host is tried here, bounded by it
 * (..._db_connect_hosts()).  A connection that meets a read-only server
 * (SQLSTATE 25006: a standby, an old primary fenced read-only) is dropped
 * once its transaction is over, so that the next task connects again.
 * ngx_http_darkroom_db_conninfo_check() alone runs at configuration time.
 */


#include "ngx_http_darkroom.h"

#include <poll.h>


#define NGX_HTTP_DARKROOM_DB_GRACE  1000
/* runs of a statement that loses a deadlock */
#define NGX_HTTP_DARKROOM_DB_TRIES  3
/* ms before the next run of it: 50, then 100 */
#define NGX_HTTP_DARKROOM_DB_BACKOFF  50


static __thread PGconn  *ngx_http_darkroom_conn;
/* the connection's darkroom.request_id, as last set ("": none) */
static __thread char     ngx_http_darkroom_conn_rid[
                             NGX_HTTP_DARKROOM_REQUEST_ID_LEN];
/* the connection's server refused a write as read-only: replace it */
static __thread ngx_uint_t  ngx_http_darkroom_conn_read_only;


/*
 * Every thread's connection is on a list too, closed by the worker at exit
 * (ngx_http_darkroom_db_exit()): nginx ends its pool threads without a
 * word to the module, and a connection left to the end of the process is
 * an abandoned session to PostgreSQL and a leak to LeakSanitizer.
 */

typedef struct ngx_http_darkroom_db_slot_s  ngx_http_darkroom_db_slot_t;

struct ngx_http_darkroom_db_slot_s {
    PGconn                       *conn;
    ngx_http_darkroom_db_slot_t  *next;
};

static __thread ngx_http_darkroom_db_slot_t  *ngx_http_darkroom_slot;
static ngx_http_darkroom_db_slot_t           *ngx_http_darkroom_slots;
static pthread_mutex_t                        ngx_http_darkroom_slots_lock =
                                                  PTHREAD_MUTEX_INITIALIZER;


static PGconn *ngx_http_darkroom_db_get(ngx_http_darkroom_db_t *db,
    ngx_http_darkroom_error_t *err);
static PGconn *ngx_http_darkroom_db_connect(ngx_http_darkroom_db_t *db,
    ngx_http_darkroom_error_t *err);
static PGconn *ngx_http_darkroom_db_connect_poll(const char *const *keywords,
    const char *const *values, int expand, uint64_t deadline,
    ngx_http_darkroom_error_t *err);
static ngx_int_t ngx_http_darkroom_db_connect_hosts(const char *conninfo,
    uint64_t deadline, PGconn **conn, ngx_http_darkroom_error_t *err);
static size_t ngx_http_darkroom_db_parts(PQconninfoOption *opts,
    PQconninfoOption **part);
static size_t ngx_http_darkroom_db_hosts(PQconninfoOption **part,
    char **list);
static size_t ngx_http_darkroom_db_entries(const char *list);
static void ngx_http_darkroom_db_host_params(PQconninfoOption *opts,
    PQconninfoOption **part, char **list, const char **keywords,
    const char **values);
static ngx_int_t ngx_http_darkroom_db_request_id(ngx_http_darkroom_db_t *db,
    PGconn *conn, ngx_http_darkroom_error_t *err);
static PGresult *ngx_http_darkroom_db_run(PGconn *conn, ngx_msec_t timeout,
    const char *sql, int nparams, const char *const *params,
    ngx_http_darkroom_error_t *err);
static ngx_int_t ngx_http_darkroom_db_send(PGconn *conn, uint64_t deadline,
    const char *sql, int nparams, const char *const *params,
    ngx_http_darkroom_error_t *err);
static PGresult *ngx_http_darkroom_db_results(PGconn *conn,
    uint64_t deadline, ngx_http_darkroom_error_t *err);
static void ngx_http_darkroom_db_failed(PGconn *conn, PGresult *res,
    ngx_http_darkroom_error_t *err);
static ngx_int_t ngx_http_darkroom_db_wait(PGconn *conn, short events,
    uint64_t deadline);
static void ngx_http_darkroom_db_unavailable(ngx_http_darkroom_error_t *err,
    const char *what, PGconn *conn);
static void ngx_http_darkroom_db_drop(void);
static void ngx_http_darkroom_db_set(PGconn *conn);


PGresult *
ngx_http_darkroom_db_exec(ngx_http_darkroom_db_t *db, const char *sql,
    int nparams, const char *const *params, ngx_http_darkroom_error_t *err)
{
    PGconn      *conn;
    PGresult    *res;
    ngx_uint_t   try;

    conn = ngx_http_darkroom_db_get(db, err);
    if (conn == NULL) {
        return NULL;
    }

    for (try = 1; /* void */ ; try++) {

        res = ngx_http_darkroom_db_run(conn, db->timeout, sql, nparams,
                                       params, err);

        if (res) {
            /* the queue wait bound applies to a task's first query only */
            db->deadline = 0;

            /* PostgreSQL answers: an outage, if one was noted, is over */
            ngx_http_darkroom_alerts_db(1);

            return res;
        }

        /*
         * A statement that is its own transaction and lost a deadlock (or
         * a serialization conflict) changed nothing: PostgreSQL's advice is
         * to run it again.  Inside BEGIN the transaction is aborted, and
         * only its owner can start over.
         */

        if (try == NGX_HTTP_DARKROOM_DB_TRIES
            || (ngx_strcmp(err->sqlstate, "40P01") != 0
                && ngx_strcmp(err->sqlstate, "40001") != 0)
            || ngx_http_darkroom_conn != conn
            || PQtransactionStatus(conn) != PQTRANS_IDLE)
        {
            return NULL;
        }

        ngx_http_darkroom_trace("postgres: SQLSTATE %s, run again (%u)",
                                err->sqlstate, (unsigned) try);

        /*
         * A moment first, longer each time: the session that won gets to
         * finish, instead of meeting the same statement again at once
         * (a thread may sleep; the event loop never waits on this)
         */

        ngx_msleep(NGX_HTTP_DARKROOM_DB_BACKOFF * try);

        ngx_memzero(err, sizeof(ngx_http_darkroom_error_t));
    }
}


static PGresult *
ngx_http_darkroom_db_run(PGconn *conn, ngx_msec_t timeout, const char *sql,
    int nparams, const char *const *params, ngx_http_darkroom_error_t *err)
{
    PGresult        *res;
    uint64_t         deadline, start;
    ExecStatusType   status;

    start = ngx_http_darkroom_metrics_now();
    deadline = ngx_http_darkroom_monotonic_ms() + timeout
               + NGX_HTTP_DARKROOM_DB_GRACE;

    if (ngx_http_darkroom_db_send(conn, deadline, sql, nparams, params, err)
        != NGX_OK)
    {
        ngx_http_darkroom_db_drop();
        return NULL;
    }

    res = ngx_http_darkroom_db_results(conn, deadline, err);

    ngx_http_darkroom_metric_since(db_statement, start);

    if (res == NULL) {
        ngx_http_darkroom_db_drop();
        return NULL;
    }

    status = PQresultStatus(res);

    if (status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK) {
        return res;
    }

    ngx_http_darkroom_db_failed(conn, res, err);

    PQclear(res);

    return NULL;
}


/* sends the statement and flushes it within the deadline */

static ngx_int_t
ngx_http_darkroom_db_send(PGconn *conn, uint64_t deadline, const char *sql,
    int nparams, const char *const *params, ngx_http_darkroom_error_t *err)
{
    int  rc;

    if (!PQsendQueryParams(conn, sql, nparams, NULL, params, NULL, NULL, 0)) {
        ngx_http_darkroom_db_unavailable(err, "send failed", conn);
        return NGX_ERROR;
    }

    while ((rc = PQflush(conn)) == 1) {
        if (ngx_http_darkroom_db_wait(conn, POLLOUT|POLLIN, deadline)
            != NGX_OK)
        {
            ngx_http_darkroom_db_unavailable(err, "send timed out", NULL);
            return NGX_ERROR;
        }

        if (!PQconsumeInput(conn)) {
            break;
        }
    }

    if (rc == -1) {
        ngx_http_darkroom_db_unavailable(err, "send failed", conn);
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * Reads every result of the statement within the deadline and answers the
 * last; NULL (err set) if time ran out or the connection was lost.
 */

static PGresult *
ngx_http_darkroom_db_results(PGconn *conn, uint64_t deadline,
    ngx_http_darkroom_error_t *err)
{
    PGresult  *res, *last;

    last = NULL;

    for ( ;; ) {

        while (PQisBusy(conn)) {
            if (ngx_http_darkroom_db_wait(conn, POLLIN, deadline) != NGX_OK) {
                if (last) {
                    PQclear(last);
                }

                ngx_http_darkroom_db_unavailable(err, "query timed out",
                                                 NULL);
                return NULL;
            }

            if (!PQconsumeInput(conn)) {
                break;
            }
        }

        res = PQgetResult(conn);
        if (res == NULL) {
            break;
        }

        if (last) {
            PQclear(last);
        }

        last = res;

        if (PQstatus(conn) == CONNECTION_BAD) {
            break;
        }
    }

    if (last == NULL || PQstatus(conn) == CONNECTION_BAD) {
        if (last) {
            PQclear(last);
        }

        ngx_http_darkroom_db_unavailable(err, "connection lost", conn);
        return NULL;
    }

    return last;
}


/* a statement Postgres refused: a darkroom refusal, a retry, or a bug */

static void
ngx_http_darkroom_db_failed(PGconn *conn, PGresult *res,
    ngx_http_darkroom_error_t *err)
{
    ngx_http_darkroom_db_error(err,
                               PQresultErrorField(res, PG_DIAG_SQLSTATE),
                               PQresultErrorField(res,
                                                  PG_DIAG_MESSAGE_PRIMARY),
                               PQresultErrorField(res,
                                                  PG_DIAG_MESSAGE_DETAIL),
                               PQresultErrorMessage(res));
}


/*
 * What a statement that raised SQLSTATE state answers: a refusal of
 * darkroom_refuse() (its status, code and sentence), 503 for what is
 * worth a retry, else 500 with text in the log.  Also for an error a
 * SQL function caught and reported (the webhook's batch, per event).
 */

void
ngx_http_darkroom_db_error(ngx_http_darkroom_error_t *err, const char *state,
    const char *primary, const char *detail, const char *text)
{
    size_t  len;

    if (state && state[0] == 'D' && state[1] == 'R') {

        /* a refusal raised by darkroom_refuse(): status, code, sentence */

        ngx_http_darkroom_error_set(err, ngx_atoi((u_char *) state + 2, 3),
                                    primary ? primary : "",
                                    "%s", detail ? detail : "");
        if (err->status < 400 || err->status > 599) {
            err->status = NGX_HTTP_BAD_REQUEST;
        }

    } else if (state && (ngx_strncmp(state, "57014", 5) == 0 /* timeout */
                  || ngx_strncmp(state, "40001", 5) == 0    /* serialize */
                  || ngx_strncmp(state, "40P01", 5) == 0    /* deadlock */
                  || ngx_strncmp(state, "25006", 5) == 0    /* read-only */
                  || ngx_strncmp(state, "08", 2) == 0
                  || ngx_strncmp(state, "57P", 3) == 0))
    {
        if (ngx_strncmp(state, "25006", 5) == 0) {
            /* not the primary (any more): reconnect after this task */
            ngx_http_darkroom_conn_read_only = 1;
        }

        ngx_http_darkroom_db_unavailable(err, "query failed", NULL);

        len = strlen(err->detail);
        snprintf(err->detail + len, sizeof(err->detail) - len, ": %s",
                 text ? text : "");

        len = strlen(err->detail);

        while (len && (err->detail[len - 1] == '\n'
                       || err->detail[len - 1] == ' '))
        {
            err->detail[--len] = '\0';
        }

    } else {
        ngx_http_darkroom_error_set(err, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                    "internal_error",
                                    "The request could not be completed.");
        snprintf(err->detail, sizeof(err->detail), "postgres: %s",
                 text ? text : "");
    }

    if (state) {
        ngx_cpystrn((u_char *) err->sqlstate, (u_char *) state,
                    sizeof(err->sqlstate));
    }
}


ngx_int_t
ngx_http_darkroom_db_command(ngx_http_darkroom_db_t *db, const char *sql,
    int nparams, const char *const *params, ngx_http_darkroom_error_t *err)
{
    PGresult  *res;

    res = ngx_http_darkroom_db_exec(db, sql, nparams, params, err);
    if (res == NULL) {
        return NGX_ERROR;
    }

    PQclear(res);

    return NGX_OK;
}


/*
 * Runs fn inside BEGIN ... COMMIT.  Anything but NGX_OK from fn rolls back
 * and is returned as is, so a handler can refuse with NGX_DECLINED and its
 * own error while nothing it wrote survives.
 */

ngx_int_t
ngx_http_darkroom_db_tx(ngx_http_darkroom_db_t *db,
    ngx_int_t (*fn)(ngx_http_darkroom_db_t *db, void *data,
    ngx_http_darkroom_error_t *err), void *data,
    ngx_http_darkroom_error_t *err)
{
    ngx_int_t                  rc;
    ngx_http_darkroom_error_t  ignored;

    if (ngx_http_darkroom_db_command(db, "BEGIN", 0, NULL, err) != NGX_OK) {
        return NGX_ERROR;
    }

    rc = fn(db, data, err);

    if (rc == NGX_OK) {
        if (ngx_http_darkroom_db_command(db, "COMMIT", 0, NULL, err)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        return NGX_OK;
    }

    if (ngx_http_darkroom_conn) {
        (void) ngx_http_darkroom_db_command(db, "ROLLBACK", 0, NULL,
                                            &ignored);
    }

    return rc;
}


static PGconn *
ngx_http_darkroom_db_get(ngx_http_darkroom_db_t *db,
    ngx_http_darkroom_error_t *err)
{
    PGconn         *conn;
    struct pollfd   pfd;

    conn = ngx_http_darkroom_conn;

    if (db->deadline && ngx_http_darkroom_monotonic_ms() >= db->deadline) {
        /* waited in the queue past the timeout: the client gave up */
        ngx_http_darkroom_db_unavailable(err, "task queued too long",
                                         NULL);
        return NULL;
    }

    if (conn && PQtransactionStatus(conn) == PQTRANS_IDLE) {

        /*
         * An idle connection has nothing to say unless the server is
         * closing it (restart, admin command, idle timeout): anything to
         * read means replace it before a statement is sent into it.  One
         * whose server refused a write as read-only is replaced too: the
         * new connect takes the host that accepts writes.
         */

        pfd.fd = PQsocket(conn);
        pfd.events = POLLIN;
        pfd.revents = 0;

        if (ngx_http_darkroom_conn_read_only
            || pfd.fd < 0 || poll(&pfd, 1, 0) != 0)
        {
            ngx_http_darkroom_trace("db: connection replaced%s",
                                    ngx_http_darkroom_conn_read_only
                                    ? " (server read-only)" : "");
            ngx_http_darkroom_db_drop();
            conn = NULL;
        }
    }

    if (conn == NULL) {
        conn = ngx_http_darkroom_db_connect(db, err);
        ngx_http_darkroom_db_set(conn);
        ngx_http_darkroom_metric_add(db_connect_failures, conn == NULL);

        /* the start of an outage, or its end (darkroom_alerts) */
        ngx_http_darkroom_alerts_db(conn != NULL);
    }

    if (conn && ngx_http_darkroom_db_request_id(db, conn, err) != NGX_OK) {
        return NULL;
    }

    return conn;
}


/*
 * Between transactions: the session's darkroom.request_id made that of
 * the request task this thread runs, if it may write ("" for a job or a
 * read), so that the job rows its transactions insert carry it (jobs'
 * DEFAULT, sql/038).  Sent only when it changes: once per such task.
 */

static ngx_int_t
ngx_http_darkroom_db_request_id(ngx_http_darkroom_db_t *db, PGconn *conn,
    ngx_http_darkroom_error_t *err)
{
    PGresult    *res;
    const char  *want;

    if (PQtransactionStatus(conn) != PQTRANS_IDLE) {
        return NGX_OK;
    }

    want = ngx_http_darkroom_request_id(1);
    if (want == NULL) {
        want = "";
    }

    if (ngx_strcmp(want, ngx_http_darkroom_conn_rid) == 0) {
        return NGX_OK;
    }

    res = ngx_http_darkroom_db_run(conn, db->timeout,
                                   "SELECT set_config('darkroom.request_id',"
                                   " $1, false)", 1, &want, err);
    if (res == NULL) {
        ngx_http_darkroom_db_drop();
        return NGX_ERROR;
    }

    PQclear(res);

    ngx_cpystrn((u_char *) ngx_http_darkroom_conn_rid, (u_char *) want,
                sizeof(ngx_http_darkroom_conn_rid));

    ngx_http_darkroom_trace("db: request id \"%s\"", want);

    return NGX_OK;
}


static PGconn *
ngx_http_darkroom_db_connect(ngx_http_darkroom_db_t *db,
    ngx_http_darkroom_error_t *err)
{
    char             ms[NGX_INT64_LEN + 1];
    PGconn          *conn;
    PGresult        *res;
    uint64_t         deadline;

    static const char *const  keywords[] = {
        "dbname", "fallback_application_name", NULL
    };

    const char *const  values[] = {
        db->conninfo, "darkroom", NULL
    };

    const char *const  params[] = {
        ms, ngx_http_darkroom_download_ttl_text,
        ngx_http_darkroom_download_limit_text
    };

    deadline = ngx_http_darkroom_monotonic_ms() + db->timeout;

    if (db->deadline && db->deadline < deadline) {
        deadline = db->deadline;
    }

    if (ngx_http_darkroom_db_connect_hosts(db->conninfo, deadline, &conn,
                                           err)
        == NGX_DECLINED)
    {
        /* one host, or no connect_timeout: libpq tries the hosts itself */
        conn = ngx_http_darkroom_db_connect_poll(keywords, values, 1,
                                                 deadline, err);
    }

    if (conn == NULL) {
        return NULL;
    }

    /* the server stops a runaway statement before our own wait gives up */

    ngx_http_darkroom_db_set(conn);

    snprintf(ms, sizeof(ms), "%lu", (unsigned long) db->timeout);

    res = ngx_http_darkroom_db_run(conn, db->timeout,
                                   "SELECT set_config('statement_timeout', "
                                   "$1, false), set_config('lock_timeout', "
                                   "$1, false), set_config("
                                   "'darkroom.download_ttl', $2, false), "
                                   "set_config('darkroom.download_limit', "
                                   "$3, false)", 3, params, err);

    if (res == NULL) {
        ngx_http_darkroom_db_drop();
        return NULL;
    }

    PQclear(res);

    return conn;
}


/*
 * One connect with libpq's asynchronous API, every wait bounded by the
 * deadline; the connection, non-blocking, or NULL with err set.
 */

static PGconn *
ngx_http_darkroom_db_connect_poll(const char *const *keywords,
    const char *const *values, int expand, uint64_t deadline,
    ngx_http_darkroom_error_t *err)
{
    short                      events;
    PGconn                    *conn;
    PostgresPollingStatusType  st;

    conn = PQconnectStartParams(keywords, values, expand);

    if (conn == NULL) {
        ngx_http_darkroom_db_unavailable(err, "out of memory", NULL);
        return NULL;
    }

    st = PGRES_POLLING_WRITING;

    while (PQstatus(conn) != CONNECTION_BAD) {

        if (st == PGRES_POLLING_OK || st == PGRES_POLLING_FAILED) {
            break;
        }

        events = (st == PGRES_POLLING_READING) ? POLLIN : POLLOUT;

        if (ngx_http_darkroom_db_wait(conn, events, deadline) != NGX_OK) {
            ngx_http_darkroom_db_unavailable(err, "connect timed out",
                                             NULL);
            PQfinish(conn);
            return NULL;
        }

        st = PQconnectPoll(conn);
    }

    if (PQstatus(conn) != CONNECTION_OK || PQsetnonblocking(conn, 1) != 0) {
        ngx_http_darkroom_db_unavailable(err, "connect failed", conn);
        PQfinish(conn);
        return NULL;
    }

    return conn;
}


/*
 * A conninfo of several hosts with connect_timeout: libpq bounds each
 * host by connect_timeout only in its blocking connect (PQconnectPoll
 * ignores it), so a first host that never answers, a machine switched
 * off, would hold every connect until the deadline and the next host,
 * the promoted standby, would never be tried.  Here each host gets a
 * connect of its own, in the conninfo's order, with every other keyword
 * as given (target_session_attrs included) and connect_timeout seconds
 * at most (libpq's minimum, 2, for 1).  NGX_DECLINED: not such a
 * conninfo, libpq's own connect applies.
 */

static ngx_int_t
ngx_http_darkroom_db_connect_hosts(const char *conninfo, uint64_t deadline,
    PGconn **conn, ngx_http_darkroom_error_t *err)
{
    char                *list[3];
    size_t               i, n, hosts;
    uint64_t             each, until;
    ngx_int_t            rc;
    const char         **keywords, **values;
    PQconninfoOption    *opts, *part[5];

    *conn = NULL;

    opts = PQconninfoParse(conninfo, NULL);
    if (opts == NULL) {
        return NGX_DECLINED;
    }

    rc = NGX_DECLINED;
    each = 0;
    n = ngx_http_darkroom_db_parts(opts, part);

    if (part[3]) {
        each = (uint64_t) ngx_max(atoi(part[3]->val), 0) * 1000;
        each = (each == 1000) ? 2000 : each;
    }

    hosts = ngx_http_darkroom_db_hosts(part, list);

    keywords = malloc(2 * (n + 2) * sizeof(char *));

    if (hosts < 2 || each == 0 || keywords == NULL) {
        goto done;
    }

    values = keywords + n + 2;
    rc = NGX_ERROR;

    for (i = 0; i < hosts && *conn == NULL; i++) {

        /* the keywords as parsed, host, hostaddr and port the i-th's */

        ngx_http_darkroom_db_host_params(opts, part, list, keywords,
                                         values);

        until = ngx_http_darkroom_monotonic_ms() + each;

        if (until > deadline) {
            until = deadline;
        }

        ngx_memzero(err, sizeof(ngx_http_darkroom_error_t));

        *conn = ngx_http_darkroom_db_connect_poll(keywords, values, 0,
                                                  until, err);

        ngx_http_darkroom_trace("db: host %zu of %zu: %s", i + 1, hosts,
                                *conn ? "connected" : err->detail);

        if (*conn == NULL && ngx_http_darkroom_monotonic_ms() >= deadline) {
            break;
        }
    }

    if (*conn) {
        rc = NGX_OK;
    }

done:

    free(keywords);
    PQconninfoFree(opts);

    return rc;
}


/*
 * At configuration time, what libpq would refuse only when connecting, in
 * a conninfo it parsed: host, hostaddr and port lists that disagree, a
 * connect_timeout that is not a number, a target_session_attrs it does
 * not know.  NULL if none, else the reason.
 */

const char *
ngx_http_darkroom_db_conninfo_check(PQconninfoOption *opts)
{
    char               *list[3], *end;
    ngx_uint_t          i;
    PQconninfoOption   *part[5];

    static const char  *attrs[] = {
        "any", "read-write", "read-only", "primary", "standby",
        "prefer-standby", NULL
    };

    (void) ngx_http_darkroom_db_parts(opts, part);

    if (ngx_http_darkroom_db_hosts(part, list) == 0) {
        return "\"port\" and \"hostaddr\" must have one entry per host";
    }

    if (part[3]) {
        (void) strtol(part[3]->val, &end, 10);

        while (*end == ' ') {
            end++;
        }

        if (end == part[3]->val || *end != '\0') {
            return "\"connect_timeout\" must be a number of seconds";
        }
    }

    if (part[4]) {
        for (i = 0; attrs[i]; i++) {
            if (ngx_strcmp(part[4]->val, attrs[i]) == 0) {
                return NULL;
            }
        }

        return "unknown \"target_session_attrs\"";
    }

    return NULL;
}


/*
 * part: the options host, hostaddr, port, connect_timeout and
 * target_session_attrs of a parsed conninfo, NULL if not given; answers
 * the number of options.
 */

static size_t
ngx_http_darkroom_db_parts(PQconninfoOption *opts, PQconninfoOption **part)
{
    size_t             n, k;
    PQconninfoOption  *o;

    static const char  *names[] = {
        "host", "hostaddr", "port", "connect_timeout",
        "target_session_attrs"
    };

    for (k = 0; k < 5; k++) {
        part[k] = NULL;
    }

    for (n = 0, o = opts; o->keyword; o++, n++) {
        for (k = 0; o->val && k < 5; k++) {
            if (ngx_strcmp(o->keyword, names[k]) == 0) {
                part[k] = o;
            }
        }
    }

    return n;
}


/*
 * The number of hosts of a conninfo (part: from ..._db_parts()) as libpq
 * counts them: host's list, else hostaddr's, else the one default host;
 * hostaddr must have as many, port one or as many.  0 if they disagree.
 * list: where the host, hostaddr and port lists start.
 */

static size_t
ngx_http_darkroom_db_hosts(PQconninfoOption **part, char **list)
{
    size_t  k, n[3], hosts;

    for (k = 0; k < 3; k++) {
        list[k] = part[k] ? part[k]->val : NULL;
        n[k] = list[k] ? ngx_http_darkroom_db_entries(list[k]) : 0;
    }

    hosts = n[0] ? n[0] : (n[1] ? n[1] : 1);

    if ((n[1] && n[1] != hosts) || (n[2] > 1 && n[2] != hosts)) {
        return 0;
    }

    return hosts;
}


/* the entries of a comma-separated list, empty ones included */

static size_t
ngx_http_darkroom_db_entries(const char *list)
{
    size_t  n;

    for (n = 1; *list; list++) {
        n += (*list == ',');
    }

    return n;
}


/*
 * The keywords and values of the next host's connect: every option given,
 * host, hostaddr and port cut to this host's entry (a list of one entry
 * serves every host).  The lists are cut in place, in the parsed options'
 * own memory, at each call one entry further.
 */

static void
ngx_http_darkroom_db_host_params(PQconninfoOption *opts,
    PQconninfoOption **part, char **list, const char **keywords,
    const char **values)
{
    char              *entry[3], *comma;
    size_t             k, n;
    ngx_uint_t         fallback;
    PQconninfoOption  *o;

    for (k = 0; k < 3; k++) {
        entry[k] = list[k];

        if (list[k] && (comma = strchr(list[k], ',')) != NULL) {
            *comma = '\0';
            list[k] = comma + 1;
        }
    }

    n = 0;
    fallback = 0;

    for (o = opts; o->keyword; o++) {
        if (o->val == NULL) {
            continue;
        }

        fallback |= (ngx_strcmp(o->keyword, "fallback_application_name")
                     == 0);

        keywords[n] = o->keyword;
        values[n] = o->val;

        for (k = 0; k < 3; k++) {
            if (o == part[k]) {
                values[n] = entry[k];
            }
        }

        n++;
    }

    if (!fallback) {
        keywords[n] = "fallback_application_name";
        values[n++] = "darkroom";
    }

    keywords[n] = NULL;
    values[n] = NULL;
}


static ngx_int_t
ngx_http_darkroom_db_wait(PGconn *conn, short events, uint64_t deadline)
{
    int             n;
    uint64_t        now;
    struct pollfd   pfd;

    pfd.fd = PQsocket(conn);
    pfd.events = events;

    if (pfd.fd < 0) {
        return NGX_ERROR;
    }

    for ( ;; ) {
        now = ngx_http_darkroom_monotonic_ms();

        if (now >= deadline) {
            return NGX_ERROR;
        }

        pfd.revents = 0;

        n = poll(&pfd, 1, (int) (deadline - now));

        if (n > 0) {
            return NGX_OK;
        }

        if (n == 0) {
            return NGX_ERROR;
        }

        if (ngx_errno != NGX_EINTR) {
            return NGX_ERROR;
        }
    }
}


static void
ngx_http_darkroom_db_unavailable(ngx_http_darkroom_error_t *err,
    const char *what, PGconn *conn)
{
    size_t       len;
    const char  *msg;

    ngx_http_darkroom_error_set(err, NGX_HTTP_SERVICE_UNAVAILABLE,
                                "db_unavailable",
                                "The database is unavailable, please retry "
                                "shortly.");

    err->retry_after = NGX_HTTP_DARKROOM_RETRY_AFTER;

    /* libpq's messages name host and user, never the password */

    msg = conn ? PQerrorMessage(conn) : "";

    snprintf(err->detail, sizeof(err->detail), "postgres: %s%s%s", what,
             *msg ? ": " : "", msg);

    len = strlen(err->detail);

    while (len && (err->detail[len - 1] == '\n'
                   || err->detail[len - 1] == ' '))
    {
        err->detail[--len] = '\0';
    }
}


static void
ngx_http_darkroom_db_drop(void)
{
    PGconn  *conn;

    conn = ngx_http_darkroom_conn;

    if (conn) {
        ngx_http_darkroom_db_set(NULL);
        PQfinish(conn);
    }
}


/* the thread's connection, and its slot on the list (made once, malloc) */

static void
ngx_http_darkroom_db_set(PGconn *conn)
{
    ngx_http_darkroom_db_slot_t  *slot;

    if (conn != ngx_http_darkroom_conn) {
        ngx_http_darkroom_conn_rid[0] = '\0';
        ngx_http_darkroom_conn_read_only = 0;
    }

    ngx_http_darkroom_conn = conn;

    slot = ngx_http_darkroom_slot;

    if (slot == NULL) {
        if (conn == NULL) {
            return;
        }

        /* no slot: the connection closes with the process, as before */

        slot = malloc(sizeof(ngx_http_darkroom_db_slot_t));
        if (slot == NULL) {
            return;
        }

        ngx_http_darkroom_slot = slot;
        slot->conn = NULL;

        (void) pthread_mutex_lock(&ngx_http_darkroom_slots_lock);
        slot->next = ngx_http_darkroom_slots;
        ngx_http_darkroom_slots = slot;
        (void) pthread_mutex_unlock(&ngx_http_darkroom_slots_lock);
    }

    (void) pthread_mutex_lock(&ngx_http_darkroom_slots_lock);
    slot->conn = conn;
    (void) pthread_mutex_unlock(&ngx_http_darkroom_slots_lock);
}


/*
 * At the worker's exit, on the event loop: nginx's thread pools (core
 * modules, so their exit comes first) have ended their threads after the
 * tasks queued ran, so no connection is in use; each is closed properly.
 */

void
ngx_http_darkroom_db_exit(ngx_log_t *log)
{
    ngx_uint_t                    n;
    ngx_http_darkroom_db_slot_t  *slot, *next;

    n = 0;

    (void) pthread_mutex_lock(&ngx_http_darkroom_slots_lock);

    for (slot = ngx_http_darkroom_slots; slot; slot = next) {
        next = slot->next;

        if (slot->conn) {
            PQfinish(slot->conn);
            n++;
        }

        free(slot);
    }

    ngx_http_darkroom_slots = NULL;

    (void) pthread_mutex_unlock(&ngx_http_darkroom_slots_lock);

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, log, 0,
                   "darkroom db: %ui thread connection(s) closed at exit", n);
}
