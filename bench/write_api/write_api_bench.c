/*
 * write_api_bench: image_record() against a plain INSERT ... ON CONFLICT DO
 * NOTHING into the same table, through libpq, with pipelining and with one
 * round trip per row. Prints rows/s for each and the cost ratios.
 *
 *   write_api_bench CONNINFO [ROWS] [BATCH]
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libpq-fe.h>

static PGconn *conn;
static long session_id;
static long url_seq;

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
die(const char *what)
{
	fprintf(stderr, "write_api_bench: %s: %s", what, PQerrorMessage(conn));
	exit(1);
}

static void
exec_ok(const char *sql)
{
	PGresult   *r = PQexec(conn, sql);

	if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
		die(sql);
	PQclear(r);
}

#define NPARAMS 9
static const char *const image_record_sql =
	"SELECT image_record($1, $2, $3, $4, $5, $6, $7, $8, $9)";
static const char *const insert_sql =
	"INSERT INTO images (session_id, url, sha256, file_path, file_size, width, height, format, content_type) "
	"VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (url) DO NOTHING";

/* Fill the parameters of the next row: a fresh URL, a plausible image. */
static void
next_row(char bufs[NPARAMS][96], const char *values[NPARAMS])
{
	long		n = ++url_seq;

	snprintf(bufs[0], 96, "%ld", session_id);
	snprintf(bufs[1], 96, "http://bench.test/img/%ld.png", n);
	char		hex[65];

	snprintf(hex, sizeof(hex), "%064lx", n);
	snprintf(bufs[2], 96, "%s", hex);
	snprintf(bufs[3], 96, "%.2s/%.2s/%s.png", hex, hex + 2, hex);
	snprintf(bufs[4], 96, "%ld", 1000 + n % 50000);
	snprintf(bufs[5], 96, "%ld", 100 + n % 900);
	snprintf(bufs[6], 96, "%ld", 100 + n % 700);
	snprintf(bufs[7], 96, "png");
	snprintf(bufs[8], 96, "image/png");
	for (int i = 0; i < NPARAMS; i++)
		values[i] = bufs[i];
}

static void
prepare(const char *name, const char *sql)
{
	PGresult   *r = PQprepare(conn, name, sql, NPARAMS, NULL);

	if (PQresultStatus(r) != PGRES_COMMAND_OK)
		die("prepare");
	PQclear(r);
}

/* One round trip (and one transaction) per row. */
static double
run_plain(const char *stmt, long rows)
{
	char		bufs[NPARAMS][96];
	const char *values[NPARAMS];
	double		t0 = now_s();

	for (long i = 0; i < rows; i++)
	{
		PGresult   *r;

		next_row(bufs, values);
		r = PQexecPrepared(conn, stmt, NPARAMS, values, NULL, NULL, 0);
		if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
			die(stmt);
		PQclear(r);
	}
	return rows / (now_s() - t0);
}

/*
 * Pipelined: BATCH statements, then a sync; each statement is its own
 * transaction (BEGIN/COMMIT are not sent, and every statement is followed
 * by its own sync so a failure would only abort that row, as the worker does).
 */
static double
run_pipelined_mode(const char *stmt, long rows, int batch, int sync_each)
{
	char		bufs[NPARAMS][96];
	const char *values[NPARAMS];
	double		t0 = now_s();

	if (!PQenterPipelineMode(conn))
		die("enter pipeline");
	for (long done = 0; done < rows;)
	{
		int			n = (rows - done < batch) ? (int) (rows - done) : batch;

		for (int i = 0; i < n; i++)
		{
			next_row(bufs, values);
			if (!PQsendQueryPrepared(conn, stmt, NPARAMS, values, NULL, NULL, 0))
				die("send");
			if ((sync_each || i == n - 1) && !PQpipelineSync(conn))
				die("sync");
		}
		for (int i = 0; i < n; i++)
		{
			PGresult   *r;

			while ((r = PQgetResult(conn)) != NULL)
			{
				if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
					die(stmt);
				PQclear(r);
			}
			if (!sync_each && i < n - 1)
				continue;
			r = PQgetResult(conn);	/* the sync */
			if (PQresultStatus(r) != PGRES_PIPELINE_SYNC)
				die("expected sync");
			PQclear(r);
		}
		done += n;
	}
	if (!PQexitPipelineMode(conn))
		die("exit pipeline");
	return rows / (now_s() - t0);
}

static double
run_pipelined(const char *stmt, long rows, int batch)
{
	return run_pipelined_mode(stmt, rows, batch, 1);
}

/* The whole batch in one transaction: what is left is the CPU cost per row. */
static double
run_batched(const char *stmt, long rows, int batch)
{
	return run_pipelined_mode(stmt, rows, batch, 0);
}

#define ITEM_PARAMS 11
static const char *const record_item_sql =
	"SELECT image_record($1, $2, $3, $4, $5, $6, $7, $8, $9, item => $10, worker => $11)";

/*
 * Leases `n` image URLs of the session to `worker` (on 50 hosts of its own,
 * 1000 leases a host at most); returns their ids and URLs.
 */
static long *
lease_items(PGconn *c, const char *worker, long n, char ***urls_out)
{
	long	   *ids = malloc(n * sizeof(long));
	char	  **urls = malloc(n * sizeof(char *));
	long		got = 0;
	char		sql[512];

	snprintf(sql, sizeof sql,
			 "SELECT crawl_enqueue(%ld, array_agg('http://%s-' || g %% 50 || '.test/i/' || g || '.png'), 1, 'image') "
			 "FROM generate_series(1, %ld) g", session_id, worker, n);
	PGresult   *r = PQexec(c, sql);

	if (PQresultStatus(r) != PGRES_TUPLES_OK)
		die("enqueue");
	PQclear(r);
	while (got < n)
	{
		snprintf(sql, sizeof sql, "SELECT item_id, url FROM crawl_claim('%s', 10000, '1 hour')", worker);
		r = PQexec(c, sql);
		if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) == 0)
			die("claim");
		for (int i = 0; i < PQntuples(r) && got < n; i++, got++)
		{
			ids[got] = atol(PQgetvalue(r, i, 0));
			urls[got] = strdup(PQgetvalue(r, i, 1));
		}
		PQclear(r);
	}
	*urls_out = urls;
	return ids;
}

/*
 * One result connection: `n` image_record() calls completing the leased
 * items, pipelined, a transaction each. Exits 0, or 1 on any error
 * (a deadlock among them).
 */
static void
result_connection(const char *conninfo, const char *worker, long n, int batch, int ready_fd, int go_fd,
				  int plain_insert)
{
	PGconn	   *c = PQconnectdb(conninfo);
	char	  **urls = NULL;
	long	   *ids = NULL;
	char		go;

	if (PQstatus(c) != CONNECTION_OK)
		exit(1);
	conn = c;
	if (!plain_insert)
		ids = lease_items(c, worker, n, &urls);
	{
		PGresult   *r = plain_insert ? PQprepare(c, "rec", insert_sql, NPARAMS, NULL)
			: PQprepare(c, "rec", record_item_sql, ITEM_PARAMS, NULL);

		if (PQresultStatus(r) != PGRES_COMMAND_OK)
			die("prepare");
		PQclear(r);
	}
	if (write(ready_fd, "r", 1) != 1 || read(go_fd, &go, 1) != 1)
		exit(1);
	if (!PQenterPipelineMode(c))
		die("enter pipeline");
	for (long done = 0; done < n;)
	{
		int			k = (n - done < batch) ? (int) (n - done) : batch;

		for (int i = 0; i < k; i++)
		{
			char		bufs[ITEM_PARAMS][96];
			const char *values[ITEM_PARAMS];
			long		j = done + i;

			next_row(bufs, (const char **) values);
			if (!plain_insert)
			{
				values[1] = urls[j];
				snprintf(bufs[9], 96, "%ld", ids[j]);
				values[9] = bufs[9];
				values[10] = worker;
			}
			if (!PQsendQueryPrepared(c, "rec", plain_insert ? NPARAMS : ITEM_PARAMS, values, NULL, NULL, 0) ||
				!PQpipelineSync(c))
				die("send");
		}
		for (int i = 0; i < k; i++)
		{
			PGresult   *r;

			while ((r = PQgetResult(c)) != NULL)
			{
				if (PQresultStatus(r) != PGRES_TUPLES_OK && PQresultStatus(r) != PGRES_COMMAND_OK)
				{
					fprintf(stderr, "write_api_bench: %s: %s", worker, PQresultErrorMessage(r));
					exit(1);
				}
				PQclear(r);
			}
			r = PQgetResult(c);
			if (PQresultStatus(r) != PGRES_PIPELINE_SYNC)
				die("expected sync");
			PQclear(r);
		}
		done += k;
	}
	PQfinish(c);
	exit(0);
}

/*
 * `k` result connections at once, `n` calls each: rows/s of them all, or a
 * negative figure when one of them failed.
 */
static double
run_result_connections(const char *conninfo, int k, long n, int batch, int round, int plain_insert)
{
	int			ready[2],
				go[2];
	pid_t		pids[8];
	double		t0;
	int			failed = 0;
	char		b;

	if (pipe(ready) != 0 || pipe(go) != 0)
		return -1;
	fflush(stdout);
	for (int i = 0; i < k; i++)
	{
		char		worker[64];

		snprintf(worker, sizeof worker, "rc%d-%d-%d", k, round, i);
		url_seq = 100000000L * (10 * k + i + 1 + 100 * plain_insert) + 1000000L * round;
		if ((pids[i] = fork()) == 0)
		{
			close(ready[0]);
			close(go[1]);
			result_connection(conninfo, worker, n, batch, ready[1], go[0], plain_insert);
		}
	}
	/* only the children write "ready": a child that dies makes read() see the end */
	close(ready[1]);
	close(go[0]);
	for (int i = 0; i < k; i++)
		if (read(ready[0], &b, 1) != 1)
			failed = 1;
	t0 = now_s();
	for (int i = 0; i < k; i++)
		if (failed || write(go[1], "g", 1) != 1)
			failed = 1;
	close(go[1]);				/* a child still waiting (after a failure) reads the end */
	for (int i = 0; i < k; i++)
	{
		int			status;

		waitpid(pids[i], &status, 0);
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			failed = 1;
	}
	close(ready[0]);
	return failed ? -1 : k * n / (now_s() - t0);
}

int
main(int argc, char **argv)
{
	long		rows = argc > 2 ? atol(argv[2]) : 20000;
	int			batch = argc > 3 ? atoi(argv[3]) : 100;
	PGresult   *r;
	double		api_pipe, ins_pipe, api_plain, ins_plain, api_batch, ins_batch;

	if (argc < 2)
	{
		fprintf(stderr, "usage: write_api_bench CONNINFO [ROWS] [BATCH]\n");
		return 2;
	}
	conn = PQconnectdb(argv[1]);
	if (PQstatus(conn) != CONNECTION_OK)
		die("connect");
	exec_ok("SET synchronous_commit = on");
	r = PQexec(conn, "SELECT crawl_start(ARRAY['http://bench.test/'], "
			   "'{\"delay_ms\": 0, \"per_host\": 1000, \"images_any_host\": true}')");
	if (PQresultStatus(r) != PGRES_TUPLES_OK)
		die("crawl_start");
	session_id = atol(PQgetvalue(r, 0, 0));
	PQclear(r);
	prepare("api", image_record_sql);
	prepare("ins", insert_sql);

	/* Warm up caches and plans so the first measured run is not penalised. */
	run_pipelined("api", 2000, batch);
	run_pipelined("ins", 2000, batch);

	/*
	 * Three interleaved rounds; each figure is the best of its three, so a
	 * burst of load from elsewhere on the machine does not decide a ratio.
	 */
	ins_pipe = api_pipe = ins_batch = api_batch = ins_plain = api_plain = 0;
	for (int round = 0; round < 3; round++)
	{
		ins_pipe = fmax(ins_pipe, run_pipelined("ins", rows, batch));
		api_pipe = fmax(api_pipe, run_pipelined("api", rows, batch));
		ins_batch = fmax(ins_batch, run_batched("ins", rows, batch));
		api_batch = fmax(api_batch, run_batched("api", rows, batch));
		ins_plain = fmax(ins_plain, run_plain("ins", rows / 4));
		api_plain = fmax(api_plain, run_plain("api", rows / 4));
	}

	printf("rows per mode and round: %ld pipelined and batched (batch %d), %ld with one round trip each; best of 3 rounds\n", rows, batch, rows / 4);
	printf("%-44s %10.0f rows/s\n", "plain INSERT ON CONFLICT DO NOTHING, pipelined", ins_pipe);
	printf("%-44s %10.0f rows/s\n", "image_record(), pipelined", api_pipe);
	printf("%-44s %10.0f rows/s\n", "plain INSERT ON CONFLICT DO NOTHING, batched", ins_batch);
	printf("%-44s %10.0f rows/s\n", "image_record(), batched", api_batch);
	printf("%-44s %10.0f rows/s\n", "plain INSERT ON CONFLICT DO NOTHING, plain", ins_plain);
	printf("%-44s %10.0f rows/s\n", "image_record(), plain", api_plain);
	printf("cost ratio image_record / INSERT, pipelined: %.2fx (goal <= 1.15x)\n", ins_pipe / api_pipe);
	printf("cost ratio image_record / INSERT, batched:   %.2fx (goal <= 1.50x; one transaction per batch: CPU cost alone)\n", ins_batch / api_batch);
	printf("cost ratio image_record / INSERT, plain:     %.2fx\n", ins_plain / api_plain);
	printf("pipelining speed-up for image_record:        %.2fx\n", api_pipe / api_plain);
	fflush(stdout);

	/*
	 * Result connections: one, then two at once, interleaved, best of 3; the
	 * peer is the same with a plain INSERT, which says what two connections
	 * can gain on this machine at all (its cores, its fsync).
	 */
	{
		double		one = 0,
					two = 0,
					ins_one = 0,
					ins_two = 0;
		long		n = rows / 4;
		int			failures = 0;

		for (int round = 0; round < 3; round++)
		{
			double		a = run_result_connections(argv[1], 1, n, batch, round, 0);
			double		b = run_result_connections(argv[1], 2, n, batch, round, 0);
			double		c = run_result_connections(argv[1], 1, n, batch, round, 1);
			double		d = run_result_connections(argv[1], 2, n, batch, round, 1);

			failures += (a < 0) + (b < 0) + (c < 0) + (d < 0);
			one = fmax(one, a);
			two = fmax(two, b);
			ins_one = fmax(ins_one, c);
			ins_two = fmax(ins_two, d);
		}
		printf("result connections, pipelined, a transaction a call, %ld calls a connection; best of 3 rounds\n", n);
		printf("%-44s %10.0f rows/s\n", "image_record() completing leased items, one", one);
		printf("%-44s %10.0f rows/s\n", "image_record() completing leased items, two", two);
		printf("%-44s %10.0f rows/s\n", "plain INSERT, one connection", ins_one);
		printf("%-44s %10.0f rows/s\n", "plain INSERT, two connections", ins_two);
		printf("two result connections / one:                %.2fx (goal >= 1.80x); plain INSERT: %.2fx; runs that failed: %d\n",
			   two / one, ins_two / ins_one, failures);
	}
	PQfinish(conn);
	/* 3: a goal missed (the figures are printed either way) */
	return ins_pipe / api_pipe <= 1.15 && ins_batch / api_batch <= 1.5 ? 0 : 3;
}
