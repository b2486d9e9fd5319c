/*
 * ha_conn.h
 *		Non-blocking libpq for the HA worker and backends (ha_conn.c): a query on a
 *		remote node driven by latch waits, its answer read by column name.
 */
#ifndef HA_CONN_H
#define HA_CONN_H

#include "access/xlogdefs.h"
#include "datatype/timestamp.h"

typedef enum HaConnPhase
{
	HA_CONN_IDLE,
	HA_CONN_CONNECTING,
	HA_CONN_FLUSHING,
	HA_CONN_READING,
	HA_CONN_DONE,
	HA_CONN_FAILED
} HaConnPhase;

struct pg_conn;
struct pg_result;

typedef struct HaConn
{
	struct pg_conn *conn;
	bool		fd_reserved;
	HaConnPhase phase;
	int			poll_wants;		/* WL_SOCKET_* the state machine waits for */
	TimestampTz started;
	TimestampTz deadline;
	const char *query;
	int			nparams;		/* $1..$n of query, as text (none: 0) */
	const char *const *params;	/* kept by pointer, like query; NULL: SQL NULL */
	struct pg_result *result;	/* last PGRES_TUPLES_OK/COMMAND_OK result */
	char		error[256];
	/* a query the remote server refused: its SQLSTATE and fields ("" else) */
	char		sqlstate[6];
	char		err_primary[256];
	char		err_detail[256];
	char		err_hint[256];
} HaConn;

/* Why a remote query failed, as ha_remote_query_diag() reports it. */
typedef struct HaRemoteError
{
	char		message[256];	/* libpq's whole message */
	char		sqlstate[6];	/* "": the server never answered the query */
	char		primary[256];
	char		detail[256];
	char		hint[256];
} HaRemoteError;

extern void ha_conn_start(HaConn *hc, const char *conninfo, const char *query,
						  int timeout_ms, const char *appname);
/*
 * Gives the next exchange of hc parameters ($1..$n, text, NULL entries for
 * SQL NULL), which must outlive it; ha_conn_reset() forgets them.  Sent
 * with the extended protocol, a parameter is never parsed as SQL: megabytes
 * of data cost no quoting, no scanning and no statement log line of that
 * size on the remote side.
 */
extern void ha_conn_set_params(HaConn *hc, int nparams, const char *const *params);
extern void ha_conn_step(HaConn *hc, int events);
extern long ha_conn_wait_ms(HaConn *hc);
extern void ha_conn_reset(HaConn *hc, bool keep_connection);
extern void ha_conn_close(HaConn *hc);
extern bool ha_remote_query(const char *conninfo, const char *query, int timeout_ms,
							char **value, char *error, size_t errlen);
/*
 * ha_remote_query() that keeps the remote error's fields: a query the peer
 * refused comes back with its SQLSTATE, primary message, detail and hint,
 * for the caller to raise again as postgres_fdw does.
 */
extern bool ha_remote_query_diag(const char *conninfo, const char *query, int timeout_ms,
								 char **value, HaRemoteError *err);
/* Why hc's exchange failed, in the form ha_remote_query_diag() reports. */
extern void ha_conn_remote_error(const HaConn *hc, HaRemoteError *err);
/*
 * Raises a failed remote query as an error here: a query the peer refused
 * with its own SQLSTATE, message, detail and hint (as postgres_fdw does),
 * with `context` naming where it ran; no answer at all as 08006 (a server
 * that refused the connection with a FATAL) or 08001.
 */
extern void ha_raise_remote_error(const HaRemoteError *err, const char *context) pg_attribute_noreturn();
/*
 * The text of column `name` in the first row of `res`; NULL when there is
 * no row, no such column, or the value is NULL.  Remote answers are read by
 * column name, so a function that gains or reorders columns on one node
 * is still read right by the other.
 */
extern const char *ha_result_value(const struct pg_result *res, const char *name);
/* The same as a boolean ("t"), an LSN, or a whole number; absent: false, 0. */
extern bool ha_result_bool(const struct pg_result *res, const char *name);
extern XLogRecPtr ha_result_lsn(const struct pg_result *res, const char *name);
extern int64 ha_result_int(const struct pg_result *res, const char *name);

#endif							/* HA_CONN_H */
