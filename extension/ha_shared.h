/*
 * ha_shared.h
 *		The shared-memory picture of this node and its peers (HaShared), what
 *		the worker last read of this node (HaLocal), and the names every node
 *		uses.  Settings are in ha_guc.h, remote queries in ha_conn.h, the
 *		write rule in ha_write_rule.h.
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
#define HA_AGENT_URL_LEN	512		/* crawler_ha.agent_url's longest value */

/* Object names used on every node (the extension is not relocatable). */
#define HA_PUBLICATION		"crawler_ha_pub"
#define HA_SUBSCRIPTION		"crawler_ha_sub"
#define HA_SLOT_PREFIX		"crawler_ha_node_"
#define HA_NOTIFY_CHANNEL	"crawler_ha_events"

/* "primary", "standby", "witness"; anything else (NULL too) is HA_ROLE_NONE. */
extern HaRole ha_role_from_name(const char *name);
/* The role's name as ha_state spells it; "" for HA_ROLE_NONE. */
extern const char *ha_role_name(HaRole role);

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
	char		agent_url[HA_AGENT_URL_LEN + 1];	/* its crawler_ha.agent_url, "" when unset */
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
	bool		reload_requested;	/* ha_wake_worker(): re-read ha_state, check the peer */
	bool		work_announced; /* crawl_announce_work() committed: notify the crawler workers */
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

/* ha_shmem.c */
extern void ha_shmem_install_hooks(void);
extern bool ha_shmem_ready(void);
extern void ha_require_preload(void);

/* ha_worker.c: the worker's entry point, run by the postmaster; never returns. */
PGDLLEXPORT void ha_worker_main(Datum main_arg);
/* From _PG_init while preloaded: registers the HA worker (restarted a second after it dies). */
extern void ha_register_worker(void);

/*
 * Whether `snap` is a set-up primary, the one node that measures a
 * replication lag (its standby's): not a role not loaded yet (the worker
 * starting), nor term 0, a node never set up, which a new standby still is
 * in shared memory until its worker wakes after ha_setup('standby').
 * ha_status(), ha_health() and ha_endpoint_check() show lag_bytes by it.
 */
static inline bool
ha_primary_lag_known(const HaShared *snap)
{
	return snap->state_loaded && snap->role == HA_ROLE_PRIMARY && snap->term > 0;
}

#endif							/* HA_SHARED_H */
