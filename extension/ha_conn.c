/*
 * ha_conn.c
 *		libpq inside a server process without ever blocking in it.
 *
 * A connection is an explicit state machine (connecting, flushing the query,
 * reading the result) with a deadline.  The caller waits for the socket with
 * WaitLatchOrSocket(... | WL_EXIT_ON_PM_DEATH), so a shutdown, a reload or the
 * postmaster's death always wakes it, and then calls ha_conn_step().  Every
 * socket is counted with AcquireExternalFD.  Failures are returned as text,
 * never raised: a dead peer is an everyday event for the HA worker.
 */
#include "postgres.h"

#include "libpq-fe.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/fd.h"
#include "storage/latch.h"
#include "utils/timestamp.h"

#include "ha_conn.h"
#include "ha_step.h"

static void
conn_fail(HaConn *hc, const char *msg)
{
	char	   *nl;

	strlcpy(hc->error, msg ? msg : "unknown error", sizeof(hc->error));
	/* libpq messages end with a newline and may span two lines */
	while ((nl = strchr(hc->error, '\n')) != NULL)
	{
		if (nl[1] == '\0')
			*nl = '\0';
		else
			*nl = ' ';
	}
	hc->phase = HA_CONN_FAILED;
	hc->poll_wants = 0;
}

/* Close the connection and give its file descriptor back. */
void
ha_conn_close(HaConn *hc)
{
	if (hc->result)
	{
		PQclear(hc->result);
		hc->result = NULL;
	}
	if (hc->conn)
	{
		PQfinish(hc->conn);
		hc->conn = NULL;
	}
	if (hc->fd_reserved)
	{
		ReleaseExternalFD();
		hc->fd_reserved = false;
	}
	hc->phase = HA_CONN_IDLE;
	hc->poll_wants = 0;
}

/* Forget the last exchange; keep a healthy connection for the next one. */
void
ha_conn_reset(HaConn *hc, bool keep_connection)
{
	if (hc->result)
	{
		PQclear(hc->result);
		hc->result = NULL;
	}
	if (!keep_connection || hc->conn == NULL || PQstatus(hc->conn) != CONNECTION_OK ||
		PQtransactionStatus(hc->conn) != PQTRANS_IDLE)
		ha_conn_close(hc);
	hc->phase = HA_CONN_IDLE;
	hc->poll_wants = 0;
	hc->nparams = 0;
	hc->params = NULL;
	hc->error[0] = '\0';
	hc->sqlstate[0] = '\0';
}

void
ha_conn_set_params(HaConn *hc, int nparams, const char *const *params)
{
	hc->nparams = nparams;
	hc->params = params;
}

static void
conn_send(HaConn *hc)
{
	int			sent;

	if (hc->nparams > 0)
		sent = PQsendQueryParams(hc->conn, hc->query, hc->nparams, NULL, hc->params, NULL, NULL, 0);
	else
		sent = PQsendQuery(hc->conn, hc->query);
	if (!sent)
	{
		conn_fail(hc, PQerrorMessage(hc->conn));
		return;
	}
	hc->phase = HA_CONN_FLUSHING;
	hc->poll_wants = WL_SOCKET_WRITEABLE;
	ha_conn_step(hc, WL_SOCKET_WRITEABLE);
}

/*
 * Start one exchange: `query` (kept by pointer, so it must outlive the
 * exchange) on the healthy connection hc already has, else on a new one to
 * `conninfo`, answered within timeout_ms.  Never blocks: the caller waits on
 * hc->poll_wants and calls ha_conn_step() until the phase is DONE or FAILED
 * (a failure to start is already FAILED on return, hc->error says why).
 */
void
ha_conn_start(HaConn *hc, const char *conninfo, const char *query,
			  int timeout_ms, const char *appname)
{
	const char *keys[4];
	const char *vals[4];

	hc->query = query;
	hc->error[0] = '\0';
	hc->sqlstate[0] = '\0';
	hc->started = GetCurrentTimestamp();
	hc->deadline = TimestampTzPlusMilliseconds(hc->started, timeout_ms);
	if (hc->result)
	{
		PQclear(hc->result);
		hc->result = NULL;
	}

	if (hc->conn != NULL && PQstatus(hc->conn) == CONNECTION_OK)
	{
		conn_send(hc);
		return;
	}
	ha_conn_close(hc);

	if (conninfo == NULL || conninfo[0] == '\0')
	{
		conn_fail(hc, "no connection string configured");
		return;
	}
	if (!AcquireExternalFD())
	{
		conn_fail(hc, "too many open files on the local server");
		return;
	}
	hc->fd_reserved = true;

	keys[0] = "dbname";
	vals[0] = conninfo;
	keys[1] = "fallback_application_name";
	vals[1] = appname;
	keys[2] = "client_encoding";
	vals[2] = "UTF8";
	keys[3] = NULL;
	vals[3] = NULL;

	hc->conn = PQconnectStartParams(keys, vals, 1);
	if (hc->conn == NULL)
	{
		conn_fail(hc, "out of memory");
		return;
	}
	if (PQstatus(hc->conn) == CONNECTION_BAD)
	{
		conn_fail(hc, PQerrorMessage(hc->conn));
		return;
	}
	if (PQsocket(hc->conn) < 0)
	{
		conn_fail(hc, "connection has no socket");
		return;
	}
	hc->phase = HA_CONN_CONNECTING;
	/* per PQconnectPoll's contract, first wait until the socket is writable */
	hc->poll_wants = WL_SOCKET_WRITEABLE;
}

/* Milliseconds the caller may sleep before the deadline (at least 1). */
long
ha_conn_wait_ms(HaConn *hc)
{
	long		ms = (long) ((hc->deadline - GetCurrentTimestamp()) / 1000);

	return ms < 1 ? 1 : ms;
}

/* HA_CONN_CONNECTING: drive PQconnectPoll, then send the query once connected. */
static void
conn_step_connecting(HaConn *hc, int events)
{
	if ((events & hc->poll_wants) == 0)
		return;
	switch (PQconnectPoll(hc->conn))
	{
		case PGRES_POLLING_READING:
			hc->poll_wants = WL_SOCKET_READABLE;
			if (PQsocket(hc->conn) < 0)
				conn_fail(hc, "connection has no socket");
			return;
		case PGRES_POLLING_WRITING:
			hc->poll_wants = WL_SOCKET_WRITEABLE;
			if (PQsocket(hc->conn) < 0)
				conn_fail(hc, "connection has no socket");
			return;
		case PGRES_POLLING_OK:
			if (PQsetnonblocking(hc->conn, 1) != 0)
			{
				conn_fail(hc, PQerrorMessage(hc->conn));
				return;
			}
			conn_send(hc);
			return;
		default:
			conn_fail(hc, PQerrorMessage(hc->conn));
			return;
	}
}

/* HA_CONN_FLUSHING: push the query out, reading meanwhile so the server never blocks on us. */
static void
conn_step_flushing(HaConn *hc, int events)
{
	if (events & WL_SOCKET_READABLE)
	{
		if (!PQconsumeInput(hc->conn))
		{
			conn_fail(hc, PQerrorMessage(hc->conn));
			return;
		}
	}
	switch (PQflush(hc->conn))
	{
		case 0:
			hc->phase = HA_CONN_READING;
			hc->poll_wants = WL_SOCKET_READABLE;
			return;
		case 1:
			hc->poll_wants = WL_SOCKET_WRITEABLE | WL_SOCKET_READABLE;
			return;
		default:
			conn_fail(hc, PQerrorMessage(hc->conn));
			return;
	}
}

/* A failed result's message and fields, kept so that the caller can raise it again. */
static void
conn_keep_error(HaConn *hc, const PGresult *res)
{
	const char *m = PQresultErrorMessage(res);
	const char *f;

	strlcpy(hc->error, (m && m[0]) ? m : "query failed", sizeof(hc->error));
	f = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	strlcpy(hc->sqlstate, f && strlen(f) == 5 ? f : "", sizeof(hc->sqlstate));
	f = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
	strlcpy(hc->err_primary, f ? f : "", sizeof(hc->err_primary));
	f = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);
	strlcpy(hc->err_detail, f ? f : "", sizeof(hc->err_detail));
	f = PQresultErrorField(res, PG_DIAG_MESSAGE_HINT);
	strlcpy(hc->err_hint, f ? f : "", sizeof(hc->err_hint));
}

/*
 * HA_CONN_READING: take every result that has arrived; the last successful
 * one is the answer, an error anywhere fails the whole query.  Done once
 * libpq has no more results.
 */
static void
conn_step_reading(HaConn *hc, int events)
{
	if ((events & WL_SOCKET_READABLE) == 0)
		return;
	if (!PQconsumeInput(hc->conn))
	{
		conn_fail(hc, PQerrorMessage(hc->conn));
		return;
	}
	while (!PQisBusy(hc->conn))
	{
		PGresult   *res = PQgetResult(hc->conn);

		if (res == NULL)
		{
			if (hc->error[0] != '\0')
				hc->phase = HA_CONN_FAILED;
			else
				hc->phase = HA_CONN_DONE;
			hc->poll_wants = 0;
			return;
		}
		switch (PQresultStatus(res))
		{
			case PGRES_TUPLES_OK:
			case PGRES_COMMAND_OK:
				if (hc->result)
					PQclear(hc->result);
				hc->result = res;
				break;
			default:
				conn_keep_error(hc, res);
				PQclear(res);
				break;
		}
	}
}

/*
 * Advance the state machine after a wait that reported `events` (possibly
 * none: then only the deadline is checked).
 */
void
ha_conn_step(HaConn *hc, int events)
{
	if (hc->phase == HA_CONN_IDLE || hc->phase == HA_CONN_DONE || hc->phase == HA_CONN_FAILED)
		return;

	if (GetCurrentTimestamp() >= hc->deadline)
	{
		char		msg[128];

		snprintf(msg, sizeof(msg), "no response within %ld ms",
				 (long) ((hc->deadline - hc->started) / 1000));
		conn_fail(hc, msg);
		return;
	}

	switch (hc->phase)
	{
		case HA_CONN_CONNECTING:
			conn_step_connecting(hc, events);
			return;
		case HA_CONN_FLUSHING:
			conn_step_flushing(hc, events);
			return;
		case HA_CONN_READING:
			conn_step_reading(hc, events);
			return;
		default:
			return;
	}
}

/*
 * Run one query on a remote node and return the first column of its first
 * row (palloc'd, NULL when there is none).  Waits interruptibly; false with
 * a message on any failure.  For backends and the worker alike.
 */
bool
ha_remote_query(const char *conninfo, const char *query, int timeout_ms,
				char **value, char *error, size_t errlen)
{
	HaRemoteError err;
	bool		ok = ha_remote_query_diag(conninfo, query, timeout_ms, value, &err);

	if (!ok && error)
		strlcpy(error, err.message, errlen);
	return ok;
}

bool
ha_remote_query_diag(const char *conninfo, const char *query, int timeout_ms,
					 char **value, HaRemoteError *err)
{
	HaConn		hc;
	bool		ok;

	memset(&hc, 0, sizeof(hc));
	if (value)
		*value = NULL;

	PG_TRY();
	{
		ha_conn_start(&hc, conninfo, query, timeout_ms, "crawler_ha");
		while (hc.phase != HA_CONN_DONE && hc.phase != HA_CONN_FAILED)
		{
			int			rc;

			rc = WaitLatchOrSocket(MyLatch,
								   WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH | hc.poll_wants,
								   PQsocket(hc.conn), ha_conn_wait_ms(&hc),
								   PG_WAIT_EXTENSION);
			if (rc & WL_LATCH_SET)
			{
				ResetLatch(MyLatch);
				CHECK_FOR_INTERRUPTS();
			}
			ha_conn_step(&hc, rc);
		}
	}
	PG_CATCH();
	{
		ha_conn_close(&hc);
		PG_RE_THROW();
	}
	PG_END_TRY();

	ok = (hc.phase == HA_CONN_DONE);
	if (ok)
	{
		if (value && hc.result && PQntuples(hc.result) > 0 && PQnfields(hc.result) > 0 &&
			!PQgetisnull(hc.result, 0, 0))
			*value = pstrdup(PQgetvalue(hc.result, 0, 0));
	}
	memset(err, 0, sizeof(*err));
	if (!ok)
		ha_conn_remote_error(&hc, err);
	ha_conn_close(&hc);
	return ok;
}

void
ha_conn_remote_error(const HaConn *hc, HaRemoteError *err)
{
	memset(err, 0, sizeof(*err));
	strlcpy(err->message, hc->error[0] ? hc->error : "no answer", sizeof(err->message));
	strlcpy(err->sqlstate, hc->sqlstate, sizeof(err->sqlstate));
	strlcpy(err->primary, hc->err_primary, sizeof(err->primary));
	strlcpy(err->detail, hc->err_detail, sizeof(err->detail));
	strlcpy(err->hint, hc->err_hint, sizeof(err->hint));
}

void
ha_raise_remote_error(const HaRemoteError *err, const char *context)
{
	/* the peer refused the query: its error, raised again as it is */
	if (err->sqlstate[0] != '\0')
		ereport(ERROR,
				(errcode(MAKE_SQLSTATE(err->sqlstate[0], err->sqlstate[1], err->sqlstate[2],
									   err->sqlstate[3], err->sqlstate[4])),
				 errmsg("%s", err->primary[0] ? err->primary : err->message),
				 err->detail[0] ? errdetail("%s", err->detail) : 0,
				 err->hint[0] ? errhint("%s", err->hint) : 0,
				 errcontext("%s", context)));

	/*
	 * No answer to the query.  libpq gives no SQLSTATE for a refused
	 * connection; one the server refused (it sent a FATAL, such as a
	 * missing privilege) is a failed connection, not an unreachable peer,
	 * so that ha_setup() does not take it for an absent one.
	 */
	ereport(ERROR,
			(errcode(strstr(err->message, "FATAL:") ? ERRCODE_CONNECTION_FAILURE
					 : ERRCODE_SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION),
			 errmsg("query on the peer failed: %s", err->message)));
}

const char *
ha_result_value(const PGresult *res, const char *name)
{
	int			col;

	if (res == NULL || PQntuples(res) < 1)
		return NULL;
	col = PQfnumber(res, name);
	if (col < 0 || PQgetisnull(res, 0, col))
		return NULL;
	return PQgetvalue(res, 0, col);
}

bool
ha_result_bool(const PGresult *res, const char *name)
{
	const char *v = ha_result_value(res, name);

	return v != NULL && v[0] == 't';
}

XLogRecPtr
ha_result_lsn(const PGresult *res, const char *name)
{
	return ha_parse_lsn(ha_result_value(res, name));
}

int64
ha_result_int(const PGresult *res, const char *name)
{
	const char *v = ha_result_value(res, name);

	return v == NULL ? 0 : strtoi64(v, NULL, 10);
}
