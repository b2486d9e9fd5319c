/*
 * ha_worker.c
 *		The HA background worker: checks the peer every health_check_interval
 *		with a non-blocking libpq ping, keeps the picture in shared memory,
 *		and acts on it: promote after failure_threshold failed checks of the
 *		primary, step down on seeing a newer term, rejoin, switch over on
 *		request, keep synchronous replication as the mode asks.
 *
 * It never blocks outside WaitLatchOrSocket(... WL_EXIT_ON_PM_DEATH) and never
 * raises an error because of the peer; if it dies anyway, the postmaster
 * starts it again after a second.
 */
#include "postgres.h"

#include "libpq-fe.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "ha_announce.h"
#include "ha_shared.h"
#include "ha_conn.h"
#include "ha_guc.h"
#include "ha_timing.h"
#include "ha_act.h"
#include "ha_events.h"
#include "ha_promote.h"
#include "ha_rejoin.h"
#include "ha_replication.h"
#include "ha_settings.h"
#include "ha_state.h"
#include "ha_switchover.h"
#include "ha_witness.h"

/*
 * A degraded semi_sync primary waits for its standby again only once the
 * standby is this close: turned on with a long lag, every commit would wait
 * for the standby to replay all of it.
 */
#define HA_SYNC_RESTORE_LAG_BYTES	(1024 * 1024)

static HaConn probe;
static TimestampTz standby_absent_since = 0;
static bool lag_alerted = false;

void
ha_register_worker(void)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = 1;
	strlcpy(worker.bgw_library_name, "crawler_ha", BGW_MAXLEN);
	strlcpy(worker.bgw_function_name, "ha_worker_main", BGW_MAXLEN);
	strlcpy(worker.bgw_name, "crawler_ha worker", BGW_MAXLEN);
	strlcpy(worker.bgw_type, "crawler_ha worker", BGW_MAXLEN);
	worker.bgw_notify_pid = 0;
	RegisterBackgroundWorker(&worker);
}

static void
worker_exit(int code, Datum arg)
{
	ha_conn_close(&probe);
	ha_witness_close();
	if (ha_shared)
	{
		SpinLockAcquire(&ha_shared->mutex);
		ha_shared->worker_pid = 0;
		ha_shared->worker_latch = NULL;
		ha_shared->first_round_done = false;
		ha_shared->contact_since_start = false;
		SpinLockRelease(&ha_shared->mutex);
	}
}

static void
parse_ping(PGresult *res, HaRemoteView *v)
{
	const char *name = ha_result_value(res, "node_name");

	/* one row that names the node and its term, or nothing is taken */
	if (res == NULL || PQntuples(res) != 1 || ha_result_value(res, "node_id") == NULL ||
		ha_result_value(res, "term") == NULL)
		return;
	v->node_id = (int32) ha_result_int(res, "node_id");
	strlcpy(v->name, name ? name : "", HA_NAME_LEN);
	v->role = ha_role_from_name(ha_result_value(res, "role"));
	v->term = ha_result_int(res, "term");
	v->fenced = ha_result_bool(res, "fenced");
	v->needs_rejoin = ha_result_bool(res, "needs_rejoin");
	v->read_only = ha_result_bool(res, "read_only");
	v->lsn = ha_result_lsn(res, "lsn");
	v->split_lsn = ha_result_lsn(res, "split_lsn");
	v->sees_peer = ha_result_bool(res, "sees_peer");
	/* absent (a peer whose ha_ping() predates it) or NULL: "" */
	strlcpy(v->agent_url, ha_result_value(res, "agent_url") ? ha_result_value(res, "agent_url") : "",
			sizeof(v->agent_url));
}

/* Fold the finished probe into shared memory; return whether it succeeded. */
static bool
record_probe(void)
{
	bool		ok = (probe.phase == HA_CONN_DONE && probe.result != NULL &&
					  PQntuples(probe.result) == 1);
	TimestampTz now = GetCurrentTimestamp();

	SpinLockAcquire(&ha_shared->mutex);
	ha_shared->peer.configured = true;
	ha_shared->peer.checks++;
	ha_shared->peer.last_check = now;
	ha_shared->peer.latency_ms = (double) (now - probe.started) / 1000.0;
	if (ok)
	{
		parse_ping(probe.result, &ha_shared->peer);
		ha_shared->peer.reachable = true;
		ha_shared->peer.ever_seen = true;
		ha_shared->peer.consecutive_failures = 0;
		ha_shared->peer.healthy = true;
		ha_shared->peer.last_success = now;
		ha_shared->peer.last_error[0] = '\0';
		if (ha_shared->peer.term > ha_shared->max_term_seen)
			ha_shared->max_term_seen = ha_shared->peer.term;
	}
	else
	{
		ha_shared->peer.reachable = false;
		ha_shared->peer.failures++;
		ha_shared->peer.consecutive_failures++;
		ha_shared->peer.healthy = ha_shared->peer.consecutive_failures < ha_failure_threshold;
		strlcpy(ha_shared->peer.last_error,
				probe.error[0] ? probe.error : "empty answer", sizeof(ha_shared->peer.last_error));
	}
	{
		int			failures = ha_shared->peer.consecutive_failures;
		bool		standby_blind = ha_shared->peer.role == HA_ROLE_STANDBY && !ha_shared->peer.sees_peer;

		SpinLockRelease(&ha_shared->mutex);

		/*
		 * Contact that keeps a primary unfenced: a standby that cannot reach
		 * us may be asking the witness for a term (a one-way cut), so it
		 * counts only while it reaches us too.
		 */
		ha_witness_peer_contact(ok && !standby_blind);
		/* logged, never raised; the first failure and each multiple of the threshold */
		if (!ok && (failures == 1 || failures % ha_failure_threshold == 0))
			ereport(LOG,
					(errcode(ERRCODE_CONNECTION_FAILURE),
					 errmsg("crawler_ha: health check of the peer failed (%d in a row): %s",
							failures, probe.error[0] ? probe.error : "empty answer")));
	}
	return ok;
}

static void
reply(uint64 id, bool ok, const char *msg)
{
	SpinLockAcquire(&ha_shared->mutex);
	ha_shared->req_ok = ok;
	strlcpy(ha_shared->req_msg, msg, HA_MSG_LEN);
	ha_shared->done_id = id;
	SpinLockRelease(&ha_shared->mutex);
}

static void start_probe(void);

/*
 * Check the peer now and wait for the answer (interruptibly): a switchover
 * or a rejoin must not act on a view that is a whole interval old.
 */
static void
probe_now(void)
{
	bool		ok;

	if (ha_peer_conninfo == NULL || ha_peer_conninfo[0] == '\0')
		return;
	if (probe.phase == HA_CONN_IDLE)
		start_probe();
	while (probe.phase != HA_CONN_DONE && probe.phase != HA_CONN_FAILED && probe.phase != HA_CONN_IDLE)
	{
		int			rc;

		rc = WaitLatchOrSocket(MyLatch,
							   WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH | probe.poll_wants,
							   PQsocket(probe.conn), ha_conn_wait_ms(&probe), PG_WAIT_EXTENSION);
		if (rc & WL_LATCH_SET)
		{
			ResetLatch(MyLatch);
			CHECK_FOR_INTERRUPTS();
		}
		ha_conn_step(&probe, rc);
	}
	if (probe.phase == HA_CONN_IDLE)
		return;
	ok = record_probe();
	ha_conn_reset(&probe, ok);
}

/* Serve a request a backend left for us. */
static void
serve_request(void)
{
	uint64		id;
	HaRequestKind kind;
	bool		force;
	int			pid;
	char		arg[HA_NAME_LEN];
	char		msg[HA_MSG_LEN];
	bool		ok = false;

	SpinLockAcquire(&ha_shared->mutex);
	id = ha_shared->req_id;
	kind = ha_shared->req_kind;
	force = ha_shared->req_force;
	pid = ha_shared->req_pid;
	strlcpy(arg, ha_shared->req_arg, HA_NAME_LEN);
	SpinLockRelease(&ha_shared->mutex);
	if (id == ha_shared->done_id)
		return;

	msg[0] = '\0';
	if (!ha_load_local_state())
	{
		reply(id, false, "the crawler_ha extension is not installed in the HA worker's database");
		return;
	}
	switch (kind)
	{
		case HA_REQ_PROMOTE:
			ok = ha_promote(arg[0] ? arg : "requested", true, force, 0, msg, sizeof(msg));
			break;
		case HA_REQ_SWITCHOVER:
			probe_now();
			ok = ha_switchover(arg, force, pid, msg, sizeof(msg));
			break;
		case HA_REQ_REJOIN:
			probe_now();
			ok = ha_rejoin(msg, sizeof(msg));
			ha_rejoin_attempted(ok, true, msg);
			break;
		case HA_REQ_PAUSE:
		case HA_REQ_RESUME:
			ok = ha_set_paused(kind == HA_REQ_PAUSE, msg, sizeof(msg));
			break;
		default:
			strlcpy(msg, "unknown request", sizeof(msg));
			break;
	}
	reply(id, ok, msg);
}

/* Keep synchronous_standby_names as the mode and the standby's presence ask. */
static void
manage_sync(void)
{
	bool		streaming;
	bool		want;
	int64		lag;
	TimestampTz now = GetCurrentTimestamp();

	SpinLockAcquire(&ha_shared->mutex);
	streaming = ha_shared->standby_streaming && ha_shared->peer.reachable;
	lag = ha_shared->lag_bytes;
	SpinLockRelease(&ha_shared->mutex);

	if (streaming)
		standby_absent_since = 0;
	else if (standby_absent_since == 0)
		standby_absent_since = now;

	switch (ha_replication_mode)
	{
		case HA_MODE_SYNC:
			want = true;
			break;
		case HA_MODE_SEMI_SYNC:
			{
				bool		degraded = ha_shared->sync_degraded;

				if (!degraded && standby_absent_since != 0 &&
					TimestampDifferenceExceeds(standby_absent_since, now, ha_sync_timeout_ms))
				{
					degraded = true;
					ha_record_event("sync_degraded",
									psprintf("no standby for %d ms: writing asynchronously", ha_sync_timeout_ms),
									-1, NULL);
				}
				else if (degraded && streaming && lag < HA_SYNC_RESTORE_LAG_BYTES)
				{
					degraded = false;
					ha_record_event("sync_restored", "the standby has caught up: synchronous again", -1, NULL);
				}
				SpinLockAcquire(&ha_shared->mutex);
				ha_shared->sync_degraded = degraded;
				SpinLockRelease(&ha_shared->mutex);
				want = !degraded;
			}
			break;
		default:
			want = false;
			break;
	}
	ha_set_sync_standby(want);
}

/*
 * A sync-mode primary without its synchronous standby: commits wait for a
 * standby that may be the node now rejoining, holding row locks its merge
 * needs.  Free the merge's way (ha_release_blocked_merges), at most every
 * 200 ms; the loop wakes that often meanwhile.
 */
static TimestampTz last_merge_release = 0;

static bool
sync_standby_missing(void)
{
	const char *cur = GetConfigOptionResetString("synchronous_standby_names");
	bool		streaming;

	SpinLockAcquire(&ha_shared->mutex);
	streaming = ha_shared->standby_streaming;
	SpinLockRelease(&ha_shared->mutex);
	return ha_local.role == HA_ROLE_PRIMARY && ha_local.term > 0 &&
		cur != NULL && strcmp(cur, HA_SUBSCRIPTION) == 0 && !streaming;
}

static void
release_blocked_merges(void)
{
	TimestampTz now = GetCurrentTimestamp();

	if (!ha_local.ext_present || !sync_standby_missing() ||
		!TimestampDifferenceExceeds(last_merge_release, now, HA_MERGE_RELEASE_INTERVAL_MS))
		return;
	last_merge_release = now;
	ha_release_blocked_merges();
}

/* The primary's watch over its standby: lag, alerts, sync mode. */
static void
primary_duties(void)
{
	double		lag_s;
	int64		lag_b;

	ha_monitor_replication();
	SpinLockAcquire(&ha_shared->mutex);
	lag_s = ha_shared->lag_seconds;
	lag_b = ha_shared->lag_bytes;
	SpinLockRelease(&ha_shared->mutex);
	if (lag_s * 1000.0 > ha_replication_lag_threshold_ms && !lag_alerted)
	{
		lag_alerted = true;
		ha_record_event("alert", psprintf("replication lag %.1f s (%lld bytes) is above %d ms",
										  lag_s, (long long) lag_b, ha_replication_lag_threshold_ms),
						-1, NULL);
	}
	else if (lag_s * 1000.0 <= ha_replication_lag_threshold_ms)
		lag_alerted = false;
	manage_sync();
}

static void
start_round(void)
{
	bool		have_ext = ha_load_local_state();

	if (!have_ext || ha_peer_conninfo == NULL || ha_peer_conninfo[0] == '\0')
	{
		SpinLockAcquire(&ha_shared->mutex);
		ha_shared->peer.configured = false;
		ha_shared->first_round_done = true;
		SpinLockRelease(&ha_shared->mutex);
		if (have_ext && ha_local.role == HA_ROLE_PRIMARY && ha_local.term > 0)
			primary_duties();
		return;
	}
	start_probe();
}

static void
start_probe(void)
{
	static char query[NAMEDATALEN * 2 + 200];

	/*
	 * Every column, read by name (parse_ping): a peer whose ha_ping() lacks
	 * one that this build reads (agent_url, during an upgrade of one node
	 * at a time) still answers the check instead of failing it, which would
	 * count as the peer being down.
	 */
	snprintf(query, sizeof(query), "SELECT * FROM %s.ha_ping()", ha_ext_schema());
	ha_conn_start(&probe, ha_peer_conninfo, query, ha_response_timeout_ms, "crawler_ha health check");
}

static void
finish_round(void)
{
	bool		ok = record_probe();
	TimestampTz started = probe.started;

	ha_conn_reset(&probe, ok);
	ha_act_on_peer_check(ok, started);
	if (ha_local.role == HA_ROLE_PRIMARY && ha_local.term > 0)
		primary_duties();
	SpinLockAcquire(&ha_shared->mutex);
	ha_shared->first_round_done = true;
	SpinLockRelease(&ha_shared->mutex);
}

/*
 * How the settings must relate: with a witness, an isolated primary must
 * fence itself before the standby can promote (ha_witness.c checks, logs,
 * records an alert and refuses witness-based failover while they do not).
 */
static void
check_settings(void)
{
	ha_witness_check_settings();
}

/*
 * A reload.  A connection string that changed is used from the next check
 * on: the open connection to the old one is closed (it may well still
 * answer, and would go on being reported), and a standby's subscription is
 * pointed at the new peer too.
 */
static void
reload_settings(void)
{
	char	   *old_peer = pstrdup(ha_peer_conninfo ? ha_peer_conninfo : "");
	char	   *old_witness = pstrdup(ha_witness_conninfo ? ha_witness_conninfo : "");

	ProcessConfigFile(PGC_SIGHUP);
	check_settings();
	ha_refresh_server_read_only();
	if (strcmp(old_peer, ha_peer_conninfo ? ha_peer_conninfo : "") != 0)
	{
		ereport(LOG,
				(errcode(ERRCODE_SUCCESSFUL_COMPLETION),
				 errmsg("crawler_ha: peer_conninfo changed: reconnecting to the peer")));
		ha_conn_close(&probe);
		SpinLockAcquire(&ha_shared->mutex);
		ha_shared->peer.reachable = false;
		ha_shared->peer.last_error[0] = '\0';
		ha_shared->peer.name[0] = '\0';	/* the old peer's, until the new one answers */
		ha_shared->peer.agent_url[0] = '\0';
		SpinLockRelease(&ha_shared->mutex);
		if (ha_load_local_state() && ha_local.sub_exists && ha_peer_conninfo && ha_peer_conninfo[0] != '\0')
			ha_subscription_set_conninfo(ha_peer_conninfo);
	}
	if (strcmp(old_witness, ha_witness_conninfo ? ha_witness_conninfo : "") != 0)
	{
		ereport(LOG,
				(errcode(ERRCODE_SUCCESSFUL_COMPLETION),
				 errmsg("crawler_ha: witness_conninfo changed: reconnecting to the witness")));
		ha_witness_close();
	}
	pfree(old_peer);
	pfree(old_witness);
}

/*
 * Wait for the peer's and the witness's sockets together, so neither a hung
 * peer nor a hung witness delays the other, and wake for the next round,
 * every deadline and the fence deadline.
 */
static void
wait_for_events(TimestampTz next_round)
{
	HaConn	   *conns[3];
	int			nconns = 0;
	WaitEventSet *set;
	WaitEvent	evs[5];
	int			n;
	TimestampTz wake = next_round;
	TimestampTz wwake = ha_witness_next_wakeup();
	long		timeout;

	if (probe.phase != HA_CONN_IDLE)
		conns[nconns++] = &probe;
	nconns += ha_witness_conns(conns + nconns);
	if (wwake != 0 && wwake < wake)
		wake = wwake;
	for (int i = 0; i < nconns; i++)
		if (conns[i]->deadline < wake)
			wake = conns[i]->deadline;
	timeout = (long) ((wake - GetCurrentTimestamp()) / 1000);
	if ((ha_replication_mode == HA_MODE_SEMI_SYNC || sync_standby_missing()) && timeout > HA_SYNC_WATCH_WAKE_MS)
		timeout = HA_SYNC_WATCH_WAKE_MS;
	if (timeout < 1)
		timeout = 1;

	set = CreateWaitEventSet(CurrentMemoryContext, 2 + nconns);
	AddWaitEventToSet(set, WL_LATCH_SET, PGINVALID_SOCKET, MyLatch, NULL);
	AddWaitEventToSet(set, WL_EXIT_ON_PM_DEATH, PGINVALID_SOCKET, NULL, NULL);
	for (int i = 0; i < nconns; i++)
		if (conns[i]->conn != NULL && PQsocket(conns[i]->conn) >= 0 && conns[i]->poll_wants != 0)
			AddWaitEventToSet(set, conns[i]->poll_wants, PQsocket(conns[i]->conn), NULL, conns[i]);
	n = WaitEventSetWait(set, timeout, evs, lengthof(evs), PG_WAIT_EXTENSION);
	FreeWaitEventSet(set);
	for (int i = 0; i < n; i++)
	{
		if (evs[i].events & WL_LATCH_SET)
			ResetLatch(MyLatch);
		else if (evs[i].user_data != NULL)
			ha_conn_step((HaConn *) evs[i].user_data, evs[i].events);
	}
}

/* Signals, the database connection, the worker's own settings, shared memory. */
static void
worker_start(void)
{
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(ha_database, NULL, 0);

	/*
	 * The worker writes this node's HA state whatever clients are told: not
	 * read-only, and never waiting for a synchronous standby that may be the
	 * very node that is gone.
	 */
	SetConfigOption("default_transaction_read_only", "off", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("synchronous_commit", "local", PGC_SUSET, PGC_S_OVERRIDE);

	memset(&probe, 0, sizeof(probe));
	before_shmem_exit(worker_exit, (Datum) 0);
	SpinLockAcquire(&ha_shared->mutex);
	ha_shared->worker_pid = MyProcPid;
	ha_shared->worker_latch = MyLatch;
	ha_shared->worker_started = GetCurrentTimestamp();
	ha_shared->first_round_done = false;
	ha_shared->done_id = ha_shared->req_id;	/* drop requests of a dead predecessor */
	SpinLockRelease(&ha_shared->mutex);

	ereport(LOG,
			(errcode(ERRCODE_SUCCESSFUL_COMPLETION),
			 errmsg("crawler_ha worker started in database \"%s\"", ha_database)));
}

void
ha_worker_main(Datum main_arg)
{
	MemoryContext loop_cxt;
	TimestampTz next_round;

	worker_start();
	check_settings();
	ha_refresh_server_read_only();
	loop_cxt = AllocSetContextCreate(TopMemoryContext, "crawler_ha worker loop",
									 ALLOCSET_DEFAULT_SIZES);
	next_round = GetCurrentTimestamp();

	for (;;)
	{
		TimestampTz now;
		HaWitnessNews news;

		MemoryContextSwitchTo(loop_cxt);
		CHECK_FOR_INTERRUPTS();

		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			reload_settings();
		}

		if (ha_shared->req_id != ha_shared->done_id)
		{
			TimestampTz before = GetCurrentTimestamp();

			serve_request();
			/* time spent serving is not the peer's fault */
			if (probe.phase != HA_CONN_IDLE)
				probe.deadline += GetCurrentTimestamp() - before;
			next_round = GetCurrentTimestamp();
		}

		/* ha_wake_worker(): a change to ha_state was committed; a round now */
		if (ha_shared->reload_requested)
		{
			SpinLockAcquire(&ha_shared->mutex);
			ha_shared->reload_requested = false;
			SpinLockRelease(&ha_shared->mutex);
			(void) ha_load_local_state();
			next_round = GetCurrentTimestamp();
		}

		/* a crawl session committed: tell the listening crawler workers */
		ha_announce_work_if_asked();

		now = GetCurrentTimestamp();
		if (probe.phase == HA_CONN_IDLE && now >= next_round)
		{
			MemoryContextReset(loop_cxt);
			next_round = TimestampTzPlusMilliseconds(now, ha_health_check_interval_ms);
			start_round();
		}
		if (probe.phase != HA_CONN_IDLE)
			ha_conn_step(&probe, 0);
		if (probe.phase == HA_CONN_DONE || probe.phase == HA_CONN_FAILED)
			finish_round();

		/* semi_sync must notice a missing standby within sync_timeout */
		if (ha_local.role == HA_ROLE_PRIMARY && ha_replication_mode == HA_MODE_SEMI_SYNC &&
			ha_local.term > 0 && probe.phase == HA_CONN_IDLE)
			manage_sync();

		/* the witness's report and term request, and the fence deadline */
		ha_witness_tick(&news);
		ha_act_on_witness(&news);

		release_blocked_merges();
		wait_for_events(next_round);
	}
}
