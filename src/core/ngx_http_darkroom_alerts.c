
/*
 * darkroom: the owner's alerts (darkroom_alerts, docs/metrics.md).
 *
 * The shop_alert email also goes, once per condition with a cool-down,
 * for dead jobs, lab orders needing attention, a webhook endpoint whose
 * signatures keep failing, and PostgreSQL unreachable for longer than
 * darkroom_alert_db_down.  The check runs in the metrics timer's pool
 * thread (one worker per node, _metrics_jobs.c), never per request:
 *
 * - alert_check() (sql/functions/alerts.sql) decides the conditions the
 *   database knows, with their cool-down in alert_state (sql/039), so
 *   that several nodes on one database send one email; the webhook
 *   endpoints failing are counted here, in the node's shared memory
 *   (every worker's requests), and handed to it by name and count.
 * - PostgreSQL's outage cannot be a job row: its start is kept in shared
 *   memory by the database layer of every thread (the first failed
 *   connection, cleared by the next success), and once it is older than
 *   darkroom_alert_db_down the check sends the email itself, through the
 *   mail module's provider (the ngx_http_darkroom_alert_mail hook), once
 *   per outage and node, at most once per cool-down.  When the database
 *   answers again, a "back after N s" note is queued the usual way
 *   (alert_db_recovered(), one for all the nodes).
 *
 * All of it is plain memory and atomics: no allocation, no nginx logging
 * in the thread; the run's note is logged by the timer's completion.
 */


#include "ngx_http_darkroom.h"


#define NGX_HTTP_DARKROOM_ALERTS_JSON_LEN  2048


static void ngx_http_darkroom_alerts_outage(
    ngx_http_darkroom_alerts_run_t *run);
static void ngx_http_darkroom_alerts_check(ngx_http_darkroom_db_t *db,
    ngx_http_darkroom_alerts_run_t *run);
static void ngx_http_darkroom_alerts_recovered(ngx_http_darkroom_db_t *db,
    ngx_http_darkroom_alerts_run_t *run);
static void ngx_http_darkroom_alerts_webhooks(
    ngx_http_darkroom_alerts_run_t *run, char *json, size_t size);
static void ngx_http_darkroom_alerts_note(ngx_http_darkroom_alerts_run_t *run,
    ngx_uint_t level, const char *fmt, ...);


/* set by the mail module when a provider is configured */
ngx_http_darkroom_alert_mail_pt  ngx_http_darkroom_alert_mail;

/* this worker's darkroom_alert_signatures window, for the event loop */
static time_t  ngx_http_darkroom_alerts_window = 900;


void
ngx_http_darkroom_alerts_init_conf(ngx_http_darkroom_alerts_conf_t *ac)
{
    ngx_conf_init_value(ac->enable, 0);
    ngx_conf_init_value(ac->cooldown, 3600);
    ngx_conf_init_value(ac->db_down, 60);
    ngx_conf_init_uint_value(ac->sig_count, 5);
    ngx_conf_init_value(ac->sig_window, 900);

    ngx_http_darkroom_alerts_window = ac->sig_window;
}


/* darkroom_alert_signatures <count> <window> */

char *
ngx_http_darkroom_alerts_signatures(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    time_t                            window;
    ngx_int_t                         n;
    ngx_str_t                        *value;
    ngx_http_darkroom_alerts_conf_t  *ac;

    ac = (ngx_http_darkroom_alerts_conf_t *) ((char *) conf + cmd->offset);

    if (ac->sig_count != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;
    n = ngx_atoi(value[1].data, value[1].len);
    window = ngx_parse_time(&value[2], 1);

    if (n < 1 || n > 100000) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid count \"%V\", it must be a number from "
                           "1 to 100000", &value[1]);
        return NGX_CONF_ERROR;
    }

    if (window == (time_t) NGX_ERROR || window < 1 || window > 86400) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid window \"%V\", it must be a time from "
                           "1s to 1d", &value[2]);
        return NGX_CONF_ERROR;
    }

    ac->sig_count = n;
    ac->sig_window = window;

    return NGX_CONF_OK;
}


/*
 * Any thread, after a connection attempt (up: it connected) or a
 * statement that answered (up): the outage's start, or its end.
 */

void
ngx_http_darkroom_alerts_db(ngx_uint_t up)
{
    time_t                           now;
    ngx_atomic_uint_t                since;
    ngx_http_darkroom_metrics_sh_t  *sh;

    sh = ngx_http_darkroom_metrics;

    if (sh == NULL) {
        return;
    }

    since = sh->db_down_since;

    if (!up) {
        if (since == 0) {
            (void) ngx_atomic_cmp_set(&sh->db_down_since, 0,
                                      (ngx_atomic_uint_t) time(NULL));
        }

        return;
    }

    /* every statement comes here: a read, nothing more, while all is well */

    if (since == 0 || !ngx_atomic_cmp_set(&sh->db_down_since, since, 0)) {
        return;
    }

    now = time(NULL);

    /* the outage was told: its end will be too */

    if (ngx_atomic_cmp_set(&sh->db_down_told, 1, 0)) {
        sh->db_recovered = (ngx_atomic_uint_t)
                           ngx_max(now - (time_t) since, 1);
    }
}


/*
 * On the event loop: a delivery to a webhook endpoint ("stripe",
 * "lab_callback") whose signature (or token) was good or not.  A bad one
 * longer than the window after the previous starts a new run.
 */

void
ngx_http_darkroom_alerts_signature(const char *endpoint, ngx_uint_t good)
{
    time_t                           now;
    ngx_uint_t                       slot;
    ngx_http_darkroom_metrics_sh_t  *sh;

    sh = ngx_http_darkroom_metrics;

    if (sh == NULL) {
        return;
    }

    slot = ngx_http_darkroom_metrics_name(NGX_HTTP_DARKROOM_NAMES_WEBHOOK,
                                          (u_char *) endpoint,
                                          ngx_strlen(endpoint));

    if (good) {
        if (sh->sig_bad[slot]) {
            sh->sig_bad[slot] = 0;
        }

        return;
    }

    now = ngx_time();

    if (sh->sig_bad[slot] == 0
        || now - (time_t) sh->sig_last[slot]
           > ngx_http_darkroom_alerts_window)
    {
        sh->sig_first[slot] = (ngx_atomic_uint_t) now;
        sh->sig_bad[slot] = 0;
    }

    (void) ngx_atomic_fetch_add(&sh->sig_bad[slot], 1);
    sh->sig_last[slot] = (ngx_atomic_uint_t) now;
}


/* in the metrics timer's thread: no nginx memory, no logging */

void
ngx_http_darkroom_alerts_run(ngx_http_darkroom_db_t *db, ngx_uint_t db_ok,
    ngx_http_darkroom_alerts_run_t *run)
{
    run->level = 0;
    run->note[0] = '\0';

    if (ngx_http_darkroom_metrics == NULL || !run->conf->enable) {
        return;
    }

    if (db_ok) {
        ngx_http_darkroom_alerts_check(db, run);
    }

    ngx_http_darkroom_alerts_outage(run);
}


/*
 * PostgreSQL unreachable for longer than darkroom_alert_db_down: the
 * email goes now, straight through the provider, under a key of the
 * outage's start (a provider that takes one sends a repeat once).
 */

static void
ngx_http_darkroom_alerts_outage(ngx_http_darkroom_alerts_run_t *run)
{
    char                             subject[128], text[512], key[64];
    char                             reason[256];
    time_t                           now, since;
    ngx_http_darkroom_metrics_sh_t  *sh;

    sh = ngx_http_darkroom_metrics;
    now = time(NULL);
    since = (time_t) sh->db_down_since;

    if (since == 0 || now - since < run->conf->db_down || sh->db_down_told
        || (sh->db_told_at
            && now - (time_t) sh->db_told_at < run->conf->cooldown))
    {
        return;
    }

    if (ngx_http_darkroom_alert_mail == NULL) {
        sh->db_down_told = 1;
        ngx_http_darkroom_alerts_note(run, NGX_LOG_ALERT,
            "darkroom alerts: PostgreSQL unreachable for %ld s, and no "
            "darkroom_mail_provider to tell the owner", (long) (now - since));
        return;
    }

    if (!ngx_atomic_cmp_set(&sh->db_down_told, 0, 1)) {
        return;
    }

    snprintf(subject, sizeof(subject),
             "PostgreSQL unreachable for %ld s", (long) (now - since));
    snprintf(text, sizeof(text),
             "darkroom has not been able to connect to PostgreSQL for "
             "%ld seconds (since %ld, unix time).\n\n"
             "Checkouts, webhooks and every page that needs the database "
             "are answered 503 meanwhile; Stripe and the labs retry their "
             "webhooks. Another email says when it answers again.\n",
             (long) (now - since), (long) since);
    snprintf(key, sizeof(key), "darkroom-alert-db-%ld", (long) since);

    if (ngx_http_darkroom_alert_mail(subject, text, key, 10000, reason,
                                     sizeof(reason))
        != NGX_OK)
    {
        (void) ngx_atomic_cmp_set(&sh->db_down_told, 1, 0);
        ngx_http_darkroom_alerts_note(run, NGX_LOG_ERR,
            "darkroom alerts: PostgreSQL unreachable for %ld s, the alert "
            "email failed: %s", (long) (now - since), reason);
        return;
    }

    sh->db_told_at = (ngx_atomic_uint_t) now;

    ngx_http_darkroom_alerts_note(run, NGX_LOG_WARN,
        "darkroom alerts: PostgreSQL unreachable for %ld s, the owner is "
        "told", (long) (now - since));
}


/* the conditions the database decides, and a recovery to note */

static void
ngx_http_darkroom_alerts_check(ngx_http_darkroom_db_t *db,
    ngx_http_darkroom_alerts_run_t *run)
{
    int                         row, n;
    char                        json[NGX_HTTP_DARKROOM_ALERTS_JSON_LEN];
    char                        cooldown[NGX_INT64_LEN + 2];
    PGresult                   *res;
    const char                 *params[2];
    ngx_http_darkroom_error_t   err;

    ngx_http_darkroom_alerts_webhooks(run, json, sizeof(json));
    snprintf(cooldown, sizeof(cooldown), "%lds", (long) run->conf->cooldown);

    params[0] = json;
    params[1] = cooldown;

    ngx_memzero(&err, sizeof(ngx_http_darkroom_error_t));

    res = ngx_http_darkroom_db_exec(db,
              "SELECT condition, sent FROM alert_check($1::jsonb, "
              "$2::interval)", 2, params, &err);

    if (res == NULL) {
        ngx_http_darkroom_alerts_note(run, NGX_LOG_WARN,
            "darkroom alerts: not checked: %s",
            err.detail[0] ? err.detail : err.message);
        return;
    }

    n = PQntuples(res);

    for (row = 0; row < n; row++) {
        if (ngx_strcmp(ngx_http_darkroom_db_value(res, row, "sent"), "t")
            == 0)
        {
            ngx_http_darkroom_alerts_note(run, NGX_LOG_NOTICE,
                "darkroom alerts: %s, the owner is told",
                ngx_http_darkroom_db_value(res, row, "condition"));
        }
    }

    PQclear(res);

    ngx_http_darkroom_alerts_recovered(db, run);
}


static void
ngx_http_darkroom_alerts_recovered(ngx_http_darkroom_db_t *db,
    ngx_http_darkroom_alerts_run_t *run)
{
    char                             seconds[NGX_INT64_LEN + 1];
    char                             cooldown[NGX_INT64_LEN + 2];
    const char                      *params[2];
    ngx_atomic_uint_t                s;
    ngx_http_darkroom_error_t        err;
    ngx_http_darkroom_metrics_sh_t  *sh;

    sh = ngx_http_darkroom_metrics;
    s = sh->db_recovered;

    if (s == 0) {
        return;
    }

    snprintf(seconds, sizeof(seconds), "%lu", (unsigned long) s);
    snprintf(cooldown, sizeof(cooldown), "%lds", (long) run->conf->cooldown);

    params[0] = seconds;
    params[1] = cooldown;

    ngx_memzero(&err, sizeof(ngx_http_darkroom_error_t));

    if (ngx_http_darkroom_db_command(db,
            "SELECT alert_db_recovered($1::bigint, $2::interval)", 2, params,
            &err)
        != NGX_OK)
    {
        ngx_http_darkroom_alerts_note(run, NGX_LOG_WARN,
            "darkroom alerts: PostgreSQL's return not noted: %s",
            err.detail[0] ? err.detail : err.message);
        return;
    }

    (void) ngx_atomic_cmp_set(&sh->db_recovered, s, 0);

    ngx_http_darkroom_alerts_note(run, NGX_LOG_NOTICE,
        "darkroom alerts: PostgreSQL answers again after %lu s",
        (unsigned long) s);
}


/*
 * The endpoints failing now, as alert_check() takes them:
 * [{"endpoint":"stripe","bad":7,"seconds":40}].  Names are the module's
 * own ("stripe", "lab_callback"), never a secret or a payload.
 */

static void
ngx_http_darkroom_alerts_webhooks(ngx_http_darkroom_alerts_run_t *run,
    char *json, size_t size)
{
    u_char                             *p, *last;
    time_t                              now, first;
    ngx_uint_t                          i, n, bad;
    ngx_http_darkroom_metrics_sh_t     *sh;
    ngx_http_darkroom_metrics_names_t  *names;

    sh = ngx_http_darkroom_metrics;
    names = &sh->names[NGX_HTTP_DARKROOM_NAMES_WEBHOOK];
    now = time(NULL);

    p = (u_char *) json;
    last = p + size - 2;
    *p++ = '[';

    n = ngx_min(names->n, NGX_HTTP_DARKROOM_METRICS_NAMES);

    for (i = 0; i < n; i++) {
        bad = sh->sig_bad[i];
        first = (time_t) sh->sig_first[i];

        if (bad < run->conf->sig_count
            || now - (time_t) sh->sig_last[i] > run->conf->sig_window)
        {
            continue;
        }

        p = ngx_slprintf(p, last,
                         "%s{\"endpoint\":\"%s\",\"bad\":%ui,"
                         "\"seconds\":%T}",
                         p == (u_char *) json + 1 ? "" : ",",
                         names->name[i], bad, now - first);
    }

    *p++ = ']';
    *p = '\0';
}


static void
ngx_http_darkroom_alerts_note(ngx_http_darkroom_alerts_run_t *run,
    ngx_uint_t level, const char *fmt, ...)
{
    size_t   len;
    va_list  args;

    len = ngx_strlen(run->note);

    if (len + 3 >= sizeof(run->note)) {
        return;
    }

    if (len) {
        run->note[len++] = ';';
        run->note[len++] = ' ';
    }

    va_start(args, fmt);
    vsnprintf(run->note + len, sizeof(run->note) - len, fmt, args);
    va_end(args);

    /* the most severe of the run's notes (lower is more severe) */
    if (run->level == 0 || level < run->level) {
        run->level = level;
    }
}
