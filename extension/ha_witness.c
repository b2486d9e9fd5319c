/*
 * ha_witness.c
 *		A data node's side of the witness, run by the HA worker:
 *		the report sent every health_check_interval, the request for a new
 *		term when the primary is lost, and self-fencing.
 *
 * The witness is passive: it never connects to anyone.  Each data node
 * reports its role and term and learns the witness's term in return (a stale
 * primary demotes on hearing of a newer one).  A standby promotes only with
 * the term the witness grants, and the witness grants it only once the
 * primary has been silent for longer than its fence_timeout: by then the
 * primary, which reached neither its standby nor the witness, has fenced
 * itself (timer-driven here, not only when a check ends).
 *
 * The report and the grant request run on connections of their own, driven
 * by the worker's WaitEventSet beside the peer's health check, so a hung peer
 * never delays them.  Every failure is logged with an errcode, never raised.
 */
#include "postgres.h"

#include "access/xlog.h"
#include "executor/spi.h"
#include "libpq-fe.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "ha_shared.h"
#include "ha_conn.h"
#include "ha_guc.h"
#include "ha_timing.h"
#include "ha_step.h"
#include "ha_events.h"
#include "ha_settings.h"
#include "ha_state.h"
#include "ha_witness.h"

static HaConn report_conn;
static HaConn grant_conn;
static char report_query[2048];
static char grant_query[2048];
static TimestampTz next_report = 0;
static bool refusal_recorded = false;	/* once per detection */
static bool order_alert_pending = false;
static bool fence_persist_pending = false;
static TimestampTz fence_base = 0;	/* since when this node is a primary with a witness */

bool
ha_witness_configured(void)
{
	return ha_witness_conninfo != NULL && ha_witness_conninfo[0] != '\0';
}

static int64
promotion_delay_ms(void)
{
	return (int64) ha_health_check_interval_ms * ha_failure_threshold;
}

bool
ha_witness_order_ok(void)
{
	return !ha_witness_configured() || (int64) ha_fence_timeout_ms < promotion_delay_ms();
}

const char *
ha_fence_order_problem(void)
{
	if (ha_witness_order_ok())
		return NULL;
	return psprintf("crawler_ha.fence_timeout (%d ms) must be below health_check_interval x failure_threshold ("
					INT64_FORMAT " ms)", ha_fence_timeout_ms, promotion_delay_ms());
}

/* At start and on reload: the witness view, and the settings' order. */
void
ha_witness_check_settings(void)
{
	bool		configured = ha_witness_configured();
	const char *order = ha_fence_order_problem();
	char		problem[HA_MSG_LEN];

	problem[0] = '\0';
	if (order != NULL)
		snprintf(problem, sizeof(problem), "%s: no witness-based failover until it is", order);

	SpinLockAcquire(&ha_shared->mutex);
	if (configured != ha_shared->witness.configured)
		memset(&ha_shared->witness, 0, sizeof(HaRemoteView));
	ha_shared->witness.configured = configured;
	strlcpy(ha_shared->settings_problem, problem, HA_MSG_LEN);
	SpinLockRelease(&ha_shared->mutex);

	if (!configured)
	{
		ha_conn_close(&report_conn);
		ha_conn_close(&grant_conn);
	}
	if (order != NULL)
	{
		/* loud: the promotion this would allow could overlap a primary still writing */
		ereport(LOG,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s", problem),
				 errdetail("With a witness, an isolated primary must turn read-only before its standby can promote."),
				 errhint("Lower crawler_ha.fence_timeout or raise the interval or the threshold, then reload.")));
		order_alert_pending = true;
	}
}

void
ha_witness_close(void)
{
	ha_conn_close(&report_conn);
	ha_conn_close(&grant_conn);
}

bool
ha_witness_grant_pending(void)
{
	return grant_conn.phase != HA_CONN_IDLE;
}

/* The connections in flight, for the worker's WaitEventSet. */
int
ha_witness_conns(HaConn **out)
{
	int			n = 0;

	if (report_conn.phase != HA_CONN_IDLE)
		out[n++] = &report_conn;
	if (grant_conn.phase != HA_CONN_IDLE)
		out[n++] = &grant_conn;
	return n;
}

/* A check of the peer ended: a success is contact (it keeps a primary unfenced). */
void
ha_witness_peer_contact(bool ok)
{
	if (!ok)
		return;
	SpinLockAcquire(&ha_shared->mutex);
	ha_shared->last_contact = GetCurrentTimestamp();
	ha_shared->contact_since_start = true;
	SpinLockRelease(&ha_shared->mutex);
	refusal_recorded = false;
}

/* The fence deadline of an unfenced primary with a witness, or 0. */
static TimestampTz
fence_deadline(void)
{
	TimestampTz last;
	int64		fenced_term;

	if (!ha_witness_configured() || !ha_local.ext_present ||
		ha_local.role != HA_ROLE_PRIMARY || ha_local.term <= 0)
	{
		fence_base = 0;
		return 0;
	}
	/* the clock starts when this node became a primary with a witness */
	if (fence_base == 0)
		fence_base = GetCurrentTimestamp();
	if (ha_local.fenced)
		return 0;
	SpinLockAcquire(&ha_shared->mutex);
	last = Max(ha_shared->last_contact, fence_base);
	fenced_term = ha_shared->self_fenced_term;
	SpinLockRelease(&ha_shared->mutex);
	if (fenced_term == ha_local.term && !fence_persist_pending)
		return 0;
	return TimestampTzPlusMilliseconds(last, ha_fence_timeout_ms);
}

TimestampTz
ha_witness_next_wakeup(void)
{
	TimestampTz t = 0;
	TimestampTz f = fence_deadline();

	if (ha_witness_configured() && report_conn.phase == HA_CONN_IDLE)
		t = next_report;
	if (f != 0 && (t == 0 || f < t))
		t = f;
	if (fence_persist_pending)
		t = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), HA_FENCE_PERSIST_RETRY_MS);
	return t;
}

/* ---- statements in a transaction of their own, errors logged ---- */

typedef struct SqlStep
{
	const char *sql;
	char	   *value;			/* the first value of the last result, or NULL */
} SqlStep;

static void
sql_step_body(void *arg)
{
	SqlStep    *st = (SqlStep *) arg;
	int			rc = SPI_execute(st->sql, false, 0);	/* the statements may be several */

	if (rc < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("crawler_ha: SPI failed (%d)", rc)));
	if (SPI_tuptable != NULL && SPI_processed > 0)
		st->value = ha_step_keep(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1));
}

static bool
run_sql(const char *what, const char *sql, char **value)
{
	SqlStep		st = {sql, NULL};
	bool		ok = ha_step_run(what, sql_step_body, &st, NULL, 0);

	if (value)
		*value = st.value;
	return ok;
}

/* ---- self-fencing ---- */

/*
 * The primary reached neither its standby nor the witness for fence_timeout:
 * refuse every write at once (shared memory), end the client sessions (a
 * write waiting for a synchronous standby that is cut off ends unacknowledged
 * and releases its lock on ha_state), then persist the fence, read-only on.
 */
void
ha_witness_self_fence(void)
{
	TimestampTz now = GetCurrentTimestamp();
	TimestampTz last;
	int			ended;
	bool		first = !fence_persist_pending;
	char	   *sql;

	SpinLockAcquire(&ha_shared->mutex);
	ha_shared->self_fenced_term = ha_local.term;
	last = Max(ha_shared->last_contact, fence_base);
	SpinLockRelease(&ha_shared->mutex);

	if (first)
		ereport(LOG,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("crawler_ha: fencing this primary: neither the standby nor the witness reached for %ld ms",
						(long) ((now - last) / 1000)),
				 errdetail("fence_timeout is %d ms; writes are refused from now on.", ha_fence_timeout_ms)));
	ended = ha_terminate_clients(0);

	sql = psprintf("SET LOCAL lock_timeout = %d; "
				   "LOCK TABLE %s.ha_state IN EXCLUSIVE MODE; "
				   "UPDATE %s.ha_state SET fenced = true, fence_reason = 'isolation' WHERE role = 'primary'; "
				   "SELECT %s.ha_record_event('fence', %s, %.1f, %s::jsonb)",
				   HA_SELF_FENCE_LOCK_TIMEOUT_MS, ha_ext_schema(), ha_ext_schema(), ha_ext_schema(),
				   quote_literal_cstr(psprintf("isolated: neither the standby nor the witness reached for %ld ms "
											   "(fence_timeout %d ms); %d client sessions ended",
											   (long) ((now - last) / 1000), ha_fence_timeout_ms, ended)),
				   (double) (now - last) / 1000.0,
				   quote_literal_cstr(psprintf("{\"reason\": \"isolation\", \"fence_timeout_ms\": %d, "
											   "\"sessions_ended\": %d}", ha_fence_timeout_ms, ended)));
	if (!run_sql("crawler_ha: self-fence", sql, NULL))
	{
		/* shared memory still refuses every write; try again shortly */
		fence_persist_pending = true;
		return;
	}
	fence_persist_pending = false;
	ha_set_read_only(true);
	ha_refresh_local_state();
}

void
ha_witness_lift_self_fence(const char *why)
{
	char	   *sql;

	sql = psprintf("UPDATE %s.ha_state SET fenced = false, fence_reason = NULL "
				   "WHERE fenced AND fence_reason = 'isolation'; "
				   "SELECT %s.ha_record_event('unfence', %s)",
				   ha_ext_schema(), ha_ext_schema(), quote_literal_cstr(why));
	if (!run_sql("crawler_ha: lifting the self-fence", sql, NULL))
		return;
	ha_set_read_only(false);
	fence_persist_pending = false;
	SpinLockAcquire(&ha_shared->mutex);
	ha_shared->self_fenced_term = 0;
	SpinLockRelease(&ha_shared->mutex);
	ha_refresh_local_state();
}

bool
ha_witness_fenced_by_isolation(void)
{
	char	   *v = NULL;
	int64		fenced_term;

	SpinLockAcquire(&ha_shared->mutex);
	fenced_term = ha_shared->self_fenced_term;
	SpinLockRelease(&ha_shared->mutex);
	if (fenced_term != 0 && fenced_term == ha_local.term)
		return true;
	if (!ha_local.fenced)
		return false;
	if (!run_sql("crawler_ha: reading the fence",
				 psprintf("SELECT fence_reason FROM %s.ha_state", ha_ext_schema()), &v))
		return false;
	return v != NULL && strcmp(v, "isolation") == 0;
}

/* ---- the report ---- */

static void
start_report(void)
{
	XLogRecPtr	lsn = GetXLogInsertRecPtr();
	bool		sees_peer;

	SpinLockAcquire(&ha_shared->mutex);
	sees_peer = ha_shared->peer.reachable;
	SpinLockRelease(&ha_shared->mutex);

	snprintf(report_query, sizeof(report_query),
			 "SET synchronous_commit = off; "
			 "SELECT witness_term, primary_name, coalesce(primary_node_id, 0) AS primary_node_id, witness_name, seen "
			 "FROM %s.ha_witness_report(%d, %s, %s, " INT64_FORMAT ", %s, '%X/%X', %s, %d, %d, " INT64_FORMAT ")",
			 ha_ext_schema(), ha_local.node_id, quote_literal_cstr(ha_local.node_name),
			 quote_literal_cstr(ha_role_name(ha_local.role)), ha_local.term, ha_local.fenced ? "true" : "false",
			 LSN_FORMAT_ARGS(lsn), sees_peer ? "true" : "false", ha_fence_timeout_ms,
			 ha_health_check_interval_ms, promotion_delay_ms());
	ha_conn_start(&report_conn, ha_witness_conninfo, report_query, ha_response_timeout_ms,
				  "crawler_ha witness report");
}

/* Fold the finished report into shared memory; true when the witness answered. */
static bool
finish_report(void)
{
	TimestampTz now = GetCurrentTimestamp();
	bool		ok = (report_conn.phase == HA_CONN_DONE && report_conn.result != NULL &&
					  PQntuples(report_conn.result) == 1 &&
					  ha_result_value(report_conn.result, "witness_term") != NULL);
	int64		wterm = 0;
	int32		wprimary_id = 0;
	char		wprimary[HA_NAME_LEN];
	int			failures;

	wprimary[0] = '\0';
	if (ok)
	{
		PGresult   *r = report_conn.result;

		const char *primary = ha_result_value(r, "primary_name");

		wterm = ha_result_int(r, "witness_term");
		strlcpy(wprimary, primary ? primary : "", HA_NAME_LEN);
		wprimary_id = (int32) ha_result_int(r, "primary_node_id");
	}

	SpinLockAcquire(&ha_shared->mutex);
	{
		HaRemoteView *w = &ha_shared->witness;

		w->configured = true;
		w->checks++;
		w->last_check = now;
		w->latency_ms = (double) (now - report_conn.started) / 1000.0;
		if (ok)
		{
			PGresult   *r = report_conn.result;

			w->reachable = w->healthy = w->ever_seen = true;
			w->consecutive_failures = 0;
			w->last_success = now;
			w->last_error[0] = '\0';
			w->term = wterm;
			w->node_id = 0;
			strlcpy(w->name, ha_result_value(r, "witness_name") ? ha_result_value(r, "witness_name") : "",
					HA_NAME_LEN);
			w->role = HA_ROLE_WITNESS;
			strlcpy(ha_shared->witness_primary, wprimary, HA_NAME_LEN);
			ha_shared->witness_primary_id = wprimary_id;
			strlcpy(ha_shared->witness_seen, ha_result_value(r, "seen") ? ha_result_value(r, "seen") : "",
					HA_MSG_LEN);
			/* contact only counts while the witness knows no newer term */
			if (wterm <= ha_local.term)
			{
				ha_shared->last_contact = now;
				ha_shared->contact_since_start = true;
			}
			if (wterm > ha_shared->max_term_seen)
				ha_shared->max_term_seen = wterm;	/* a stale primary refuses writes at once */
		}
		else
		{
			w->reachable = false;
			w->failures++;
			w->consecutive_failures++;
			w->healthy = w->consecutive_failures < ha_failure_threshold;
			strlcpy(w->last_error, report_conn.error[0] ? report_conn.error : "empty answer",
					sizeof(w->last_error));
		}
		failures = w->consecutive_failures;
	}
	SpinLockRelease(&ha_shared->mutex);

	if (!ok && (failures == 1 || failures % ha_failure_threshold == 0))
		ereport(LOG,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("crawler_ha: report to the witness failed (%d in a row): %s",
						failures, report_conn.error[0] ? report_conn.error : "empty answer")));
	ha_conn_reset(&report_conn, ok);
	return ok;
}

/* ---- the term request ---- */

void
ha_witness_request_grant(void)
{
	TimestampTz now = GetCurrentTimestamp();
	TimestampTz seen;
	int64		silence_ms;

	if (!ha_witness_configured() || grant_conn.phase != HA_CONN_IDLE)
		return;
	SpinLockAcquire(&ha_shared->mutex);
	seen = ha_shared->peer.ever_seen ? ha_shared->peer.last_success : ha_shared->worker_started;
	SpinLockRelease(&ha_shared->mutex);
	silence_ms = (now - seen) / 1000;
	snprintf(grant_query, sizeof(grant_query),
			 "SELECT granted, term, primary_name, coalesce(primary_node_id, 0) AS primary_node_id, reason "
			 "FROM %s.ha_witness_grant(%d, %s, " INT64_FORMAT ", " INT64_FORMAT ", %s)",
			 ha_ext_schema(), ha_local.node_id, quote_literal_cstr(ha_local.node_name),
			 ha_local.term, silence_ms,
			 quote_literal_cstr(psprintf("primary %s unreachable", ha_local.primary_name)));
	ha_conn_start(&grant_conn, ha_witness_conninfo, grant_query, ha_response_timeout_ms,
				  "crawler_ha witness grant");
}

/* Read the finished term request: the term granted, or 0 (refused, failed). */
static int64
finish_grant(void)
{
	bool		ok = (grant_conn.phase == HA_CONN_DONE && grant_conn.result != NULL &&
					  PQntuples(grant_conn.result) == 1 &&
					  ha_result_value(grant_conn.result, "term") != NULL);
	bool		granted = false;
	int64		term = 0;
	char		why[HA_MSG_LEN];

	if (ok)
	{
		const char *reason = ha_result_value(grant_conn.result, "reason");

		granted = ha_result_bool(grant_conn.result, "granted");
		term = ha_result_int(grant_conn.result, "term");
		strlcpy(why, reason ? reason : "", sizeof(why));
	}
	else
		strlcpy(why, grant_conn.error[0] ? grant_conn.error : "empty answer", sizeof(why));
	ha_conn_reset(&grant_conn, ok);

	{
		char	   *state = psprintf("%s: %s", !ok ? "term request failed"
									 : granted ? psprintf("term " INT64_FORMAT " granted", term)
									 : "term refused", why);

		SpinLockAcquire(&ha_shared->mutex);
		strlcpy(ha_shared->grant_state, state, HA_MSG_LEN);
		SpinLockRelease(&ha_shared->mutex);
	}

	if (!ok)
	{
		ereport(LOG,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("crawler_ha: asking the witness for a new term failed: %s", why)));
		return 0;
	}
	if (!granted)
	{
		ereport(LOG,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("crawler_ha: the witness refused a new term: %s", why)));
		if (!refusal_recorded)
		{
			refusal_recorded = true;
			ha_record_event("grant_refused", psprintf("no promotion: the witness refused a new term: %s", why),
							-1, NULL);
		}
		return 0;
	}

	/* the term is ours, durably at the witness: the decision table promotes with it */
	return term;
}

bool
ha_witness_isolated(void)
{
	TimestampTz deadline = fence_deadline();

	return deadline != 0 && GetCurrentTimestamp() >= deadline;
}

void
ha_witness_tick(HaWitnessNews *news)
{
	TimestampTz now;

	memset(news, 0, sizeof(*news));
	if (!ha_local.ext_present)
		return;
	if (order_alert_pending)
	{
		order_alert_pending = false;
		ha_record_event("alert", ha_shared->settings_problem, -1, NULL);
	}
	if (!ha_witness_configured() || ha_local.role == HA_ROLE_WITNESS || ha_local.term <= 0)
	{
		ha_witness_close();
		return;
	}

	if (report_conn.phase != HA_CONN_IDLE)
		ha_conn_step(&report_conn, 0);
	if (report_conn.phase == HA_CONN_DONE || report_conn.phase == HA_CONN_FAILED)
		news->answered = finish_report();
	if (grant_conn.phase != HA_CONN_IDLE)
		ha_conn_step(&grant_conn, 0);
	if (grant_conn.phase == HA_CONN_DONE || grant_conn.phase == HA_CONN_FAILED)
		news->granted_term = finish_grant();

	now = GetCurrentTimestamp();
	if (report_conn.phase == HA_CONN_IDLE && now >= next_report)
	{
		next_report = TimestampTzPlusMilliseconds(now, ha_health_check_interval_ms);
		start_report();
	}
	news->isolated = ha_witness_isolated();
}

/* Why a write must be refused because of the witness or a self-fence, or NULL. */
const char *
ha_write_block_reason(const HaShared *snap)
{
	if (snap->role != HA_ROLE_PRIMARY || snap->term <= 0)
		return NULL;
	if (snap->self_fenced_term != 0 && snap->self_fenced_term == snap->term)
		return "it fenced itself: it reached neither its standby nor the witness for crawler_ha.fence_timeout";
	if (ha_witness_configured() && !snap->contact_since_start)
		return "since its start it has reached neither the witness nor its standby";
	return NULL;
}
