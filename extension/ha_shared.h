/*
 * ha_shared.h
 *		High availability: settings, the shared-memory picture of this node
 *		and its peers, and the entry points of the ha_*.c files.
 *
 * One background worker per data node owns every change of HA state
 * (promote, demote, rejoin, switchover); SQL functions only read shared
 * memory or post a request to the worker and wait for its answer.
 */
#ifndef HA_SHARED_H
#define HA_SHARED_H

#include "access/xlogdefs.h"
#include "datatype/timestamp.h"
#include "storage/latch.h"
#include "storage/spin.h"

#include "ha_role.h"

#define HA_NAME_LEN			64
#define HA_ROLE_LEN			16
#define HA_MSG_LEN			512

/* Object names used on every node (the extension is not relocatable). */
#define HA_PUBLICATION		"crawler_ha_pub"
#define HA_SUBSCRIPTION		"crawler_ha_sub"
#define HA_SLOT_PREFIX		"crawler_ha_node_"
#define HA_NOTIFY_CHANNEL	"crawler_ha_events"

/* "primary", "standby", "witness"; anything else (NULL too) is HA_ROLE_NONE. */
extern HaRole ha_role_from_name(const char *name);
/* The role's name as ha_state spells it; "" for HA_ROLE_NONE. */
extern const char *ha_role_name(HaRole role);

typedef enum HaReplicationMode
{
	HA_MODE_ASYNC,
	HA_MODE_SYNC,
	HA_MODE_SEMI_SYNC
} HaReplicationMode;

/* ---- settings (ha_guc.c) ---- */
extern char *ha_peer_conninfo;
extern char *ha_witness_conninfo;
extern char *ha_database;
extern int	ha_health_check_interval_ms;
extern int	ha_failure_threshold;
extern int	ha_response_timeout_ms;
extern bool ha_auto_failover;
extern int	ha_replication_mode;
extern int	ha_sync_timeout_ms;
extern int	ha_replication_lag_threshold_ms;
extern int	ha_fence_timeout_ms;
extern int	ha_priority;

extern const char *ha_replication_mode_name(int mode);

/* ---- what one probe of a remote node saw (ha_shmem.c) ---- */
typedef struct HaRemoteView
{
	bool		configured;		/* a conninfo is set */
	bool		reachable;		/* the last check succeeded */
	bool		healthy;		/* fewer than failure_threshold failures */
	bool		ever_seen;		/* at least one check succeeded */
	int			consecutive_failures;
	int64		checks;
	int64		failures;
	TimestampTz last_check;
	TimestampTz last_success;
	double		latency_ms;
	int32		node_id;
	char		name[HA_NAME_LEN];
	HaRole		role;
	int64		term;
	bool		fenced;
	bool		needs_rejoin;
	bool		read_only;
	XLogRecPtr	lsn;			/* its pg_current_wal_lsn() */
	XLogRecPtr	split_lsn;		/* where it forked from its old primary */
	bool		sees_peer;		/* its own last check of its peer (us) succeeded */
	char		last_error[256];
} HaRemoteView;

/* Requests a backend hands to the worker. */
typedef enum HaRequestKind
{
	HA_REQ_NONE,
	HA_REQ_PROMOTE,				/* promote this node (switchover target or forced) */
	HA_REQ_SWITCHOVER,			/* this primary hands over to the peer */
	HA_REQ_REJOIN,				/* this old primary follows the new one */
	HA_REQ_PAUSE,				/* no automatic failover or rejoin */
	HA_REQ_RESUME
} HaRequestKind;

typedef struct HaShared
{
	slock_t		mutex;

	pid_t		worker_pid;
	Latch	   *worker_latch;
	TimestampTz worker_started;
	bool		first_round_done;	/* writes wait for the first peer check */

	/* this node, mirrored from the ha_state table by the worker */
	bool		state_loaded;
	HaRole		role;
	int64		term;
	bool		fenced;
	bool		needs_rejoin;
	bool		paused;
	char		primary_name[HA_NAME_LEN];
	int64		max_term_seen;	/* newest term heard of from anyone */

	/* replication as seen from the primary */
	int64		lag_bytes;
	double		lag_seconds;
	char		sync_state[HA_ROLE_LEN];
	bool		sync_degraded;	/* semi_sync currently running async */
	bool		standby_streaming;

	TimestampTz last_failover;
	double		last_failover_ms;

	/* one request at a time */
	uint64		req_id;
	uint64		done_id;
	HaRequestKind req_kind;
	bool		req_force;
	int			req_pid;
	char		req_arg[HA_NAME_LEN];
	bool		req_ok;
	char		req_msg[HA_MSG_LEN];

	HaRemoteView peer;
	HaRemoteView witness;

	/* the witness and self-fencing (ha_witness.c) */
	int64		self_fenced_term;	/* writes refuse at once while == term */
	bool		contact_since_start;	/* reached the witness or the peer */
	TimestampTz last_contact;	/* last success with the witness or the peer */
	char		witness_primary[HA_NAME_LEN];	/* the primary the witness knows */
	int32		witness_primary_id; /* its node id, 0 when none is known */
	char		witness_seen[HA_MSG_LEN];	/* what it hears of the data nodes */
	char		settings_problem[HA_MSG_LEN];	/* fence order wrong: why */
	char		grant_state[HA_MSG_LEN];	/* the last answer to a term request */

	char		rejoin_problem[HA_MSG_LEN];	/* why the last rejoin attempt failed */
	bool		server_read_only;	/* default_transaction_read_only as the server sets it */
} HaShared;

extern HaShared *ha_shared;

/* What the worker last read of this node from its tables (worker only). */
typedef struct HaLocal
{
	bool		ext_present;
	char		schema[NAMEDATALEN * 2 + 3];	/* quoted */
	int32		node_id;
	char		node_name[HA_NAME_LEN];
	HaRole		role;
	int64		term;
	char		primary_name[HA_NAME_LEN];
	int32		primary_node_id;
	int32		peer_node_id;
	bool		fenced;
	bool		needs_rejoin;
	bool		paused;
	bool		sub_exists;
	bool		sub_enabled;
} HaLocal;

extern HaLocal ha_local;
extern bool ha_preloaded;

/* ha_guc.c */
extern void ha_worker_init(void);

/* ha_shmem.c */
extern void ha_shmem_install_hooks(void);
extern bool ha_shmem_ready(void);

/* ha_worker.c: the worker's entry point, run by the postmaster; never returns. */
PGDLLEXPORT void ha_worker_main(Datum main_arg);
/* From _PG_init while preloaded: registers the HA worker (restarted a second after it dies). */
extern void ha_register_worker(void);

/* ha_conn.c: non-blocking libpq driven by latch waits */
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


/* Whether this node may write crawl data, and if not, why (ha_write_rule.c). */
typedef enum HaWriteVerdict
{
	HA_WRITE_ALLOWED,
	HA_WRITE_IN_RECOVERY,		/* the server is a physical standby */
	HA_WRITE_NOT_PRIMARY,		/* a standby or a witness */
	HA_WRITE_FENCED,			/* a switchover or a fence is in progress */
	HA_WRITE_NEWER_TERM,		/* a newer term exists: this node must rejoin */
	HA_WRITE_BLOCKED,			/* self-fenced, or no contact since its start */
	HA_WRITE_UNCHECKED,			/* restarted: its first check of the peer is pending */
	HA_WRITE_READ_ONLY			/* the server's default_transaction_read_only is on */
} HaWriteVerdict;

typedef struct HaWriteCheck
{
	HaWriteVerdict verdict;
	const char *why;			/* HA_WRITE_BLOCKED: the reason */
	int64		newer_term;		/* HA_WRITE_NEWER_TERM: the newest term heard of */
	char		newer_primary[HA_NAME_LEN];	/* its primary, "" when unknown */
} HaWriteCheck;

/*
 * The rule, for a node in `role` of `term`, `fenced` or not (its ha_state
 * row, or shared memory's copy of it), with what shared memory knows of the
 * peer, the witness and the server's settings.  Raises nothing; fills `out`.
 */
extern void ha_check_write(HaRole role, int64 term, bool fenced, HaWriteCheck *out);

#endif							/* HA_SHARED_H */
