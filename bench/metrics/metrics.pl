# The cost of a scrape of the agent's Prometheus endpoint (GET /metrics on
# the HA port: one SQL call, ha_metrics(), and its rows written out) at two
# sizes of the crawl data:
#  (a) one crawl session, a few images and frontier rows;
#  (b) METRICS_SESSIONS sessions (most running, the others ended within the
#      last day, so that ha_metrics() lists every one), METRICS_IMAGES images
#      rows and about 3,000 frontier rows a session, each blob held by both
#      nodes' stores (ha_blobs), written directly by the superuser.
# The peer, same run, same database, same client: Debian's
# prometheus-postgres-exporter with its default collectors, its own
# connection to the primary through the same socket, TLS with the agents'
# certificate. Both are scraped METRICS_SCRAPES times, interleaved (each
# side first in turn), each over one kept TLS connection (as Prometheus
# keeps its connections), without compression on either side.
# For each side and size: wall time of the GET (median, p95); the database
# call's own duration as each reports it; CPU per scrape of the serving
# process (all its threads) and of PostgreSQL (every process of the primary's
# cluster, including backends that ended, during each scrape), each less its
# idle rate; the exposition's size; promtool check metrics of one answer.
use strict;
use warnings;
use IO::Socket::INET;
use IPC::Open2 ();
use IPC::Run;
use POSIX qw(ceil);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Time::HiRes qw(time sleep);
use CrawlerHA::Test qw(ha_pair wait_port bench_conf median);
use CrawlerHA::Agent qw(agent_start agent_stop agent_kill agent_pki agent_role);

my $n_scrapes = $ENV{METRICS_SCRAPES} // 50;
my $n_images = $ENV{METRICS_IMAGES} // 1000000;
my $n_sessions = $ENV{METRICS_SESSIONS} // 100;
my $explain_file = $ENV{METRICS_EXPLAIN} // '';
my $exporter_bin = 'prometheus-postgres-exporter';
my $hz = POSIX::sysconf(POSIX::_SC_CLK_TCK()) || 100;
sub out { my ($l) = @_; print "$l\n"; }

my (@agents, @started, @clients);
END
{
	eval { kill 'TERM', $_->{pid}; waitpid($_->{pid}, 0) } for @clients;
	eval { $_->kill_kill } for @started;
	eval { agent_kill($_) } for @agents;
}

my $pki = agent_pki();
# Production settings (not the test framework's tiny ones). max_wal_size as
# PostgreSQL's default: the framework's 128MB would checkpoint every few
# seconds of the bulk load.
my $conf = bench_conf("max_wal_size = '1GB'");
my ($p, $s) = ha_pair(names => [ 'mx_p', 'mx_s' ], conf => $conf);
die "the installed crawler_ha has no ha_metrics(): install the current extension (make -C extension install)\n"
  unless $p->safe_psql('postgres', "SELECT count(*) FROM pg_proc WHERE proname = 'ha_metrics'") == 1;
# The orphan sweep (every 600 s by default) matches ha_blobs against the
# images rows (blob_orphans()): at a million rows, one that fell among the
# scrapes would be counted as theirs. Nothing else here is changed from the
# defaults.
my @agent_args = ('--log-level', 'warning', '--orphan-sweep-s', 86400);
my $ap = agent_start($p, args => \@agent_args);
push @agents, $ap;
# The standby's agent, as in production: the primary's file sync has a peer.
my $as = agent_start($s, args => \@agent_args);
push @agents, $as;
my $agent_user = agent_role($p);
my $agent_pid = $ap->{harness}{KIDS}[0]{PID};
die "no agent process $agent_pid" unless slurp_file("/proc/$agent_pid/comm") =~ /^crawler-ha/;
# Both nodes' stores are attached before any row is written: every image's
# blob is then recorded as held (ha_blobs) before its row arrives, so that
# the images trigger queues nothing and file sync stays idle.
for my $node ($p, $s)
{
	$node->poll_query_until('postgres', 'SELECT count(*) = 1 FROM ha_blob_store')
	  or die 'the agent of ' . $node->name . ' did not attach its store';
}

# --- the peer ---
my $exp_port = PostgreSQL::Test::Cluster::get_free_port();
my $exp_dir = PostgreSQL::Test::Utils::tempdir();
open my $wc, '>', "$exp_dir/web.yml" or die $!;
print $wc "tls_server_config:\n  cert_file: $pki->{cert}\n  key_file: $pki->{key}\n";
close $wc;
my $me = getpwuid($<);
# Its own application_name, to find its sessions in pg_stat_activity.
my $exp_dsn = 'host=' . $p->host . ' port=' . $p->port . " user=$me dbname=postgres sslmode=disable"
  . ' application_name=postgres_exporter';
my ($exp_out, $exp_err) = ('', '');
my $exporter;
{
	local $ENV{DATA_SOURCE_NAME} = $exp_dsn;
	$exporter = IPC::Run::start(
		[ $exporter_bin, "--web.listen-address=127.0.0.1:$exp_port", "--web.config.file=$exp_dir/web.yml",
			'--log.level=warn' ],
		'>', \$exp_out, '2>', \$exp_err);
}
push @started, $exporter;
wait_port($exp_port, 10) or die "postgres_exporter did not start: $exp_err";
my $exp_pid = $exporter->{KIDS}[0]{PID};
my ($exp_version) = `$exporter_bin --version 2>&1` =~ /version (\S+)/;

# --- CPU, from /proc ---
# A process's CPU time, every thread: the sum of the threads' on-CPU time
# (schedstat, in ns: the scrapes of the small size take about a
# millisecond, and utime + stime of /proc/PID/stat counts 10 ms ticks).
sub proc_cpu
{
	my ($pid) = @_;
	my $t = 0;
	for my $task (glob("/proc/$pid/task/*"))
	{
		open my $f, '<', "$task/schedstat" or next;
		my $l = <$f>;
		$t += (split ' ', $l)[0] if defined $l;
	}
	return $t / 1e9;
}

# /proc/PID/stat after the command's name: utime, stime, cutime, cstime.
sub proc_stat
{
	my ($pid) = @_;
	open my $f, '<', "/proc/$pid/stat" or return (0, 0, 0, 0);
	my $l = <$f>;
	$l =~ s/^.*\) //s;
	my @f = split ' ', $l;
	return @f[ 11 .. 14 ];
}

# utime + stime, in seconds, as the ticks of /proc/PID/stat say.
sub proc_ticks
{
	my ($pid) = @_;
	my ($u, $sy) = proc_stat($pid);
	return ($u + $sy) / $hz;
}

# The whole cluster of $node: the postmaster, each of its children, and the
# children that ended (the postmaster's cutime + cstime: a new connection
# per scrape is counted whole, its start included).
my %pm;
sub cluster_cpu
{
	my ($node) = @_;
	my $pm = $pm{ $node->name } //= do { my ($l) = split /\n/, slurp_file($node->data_dir . '/postmaster.pid'); $l };
	my (undef, undef, $cu, $cs) = proc_stat($pm);
	my $t = proc_cpu($pm) + ($cu + $cs) / $hz;
	open my $f, '<', "/proc/$pm/task/$pm/children" or die "/proc/$pm/task/$pm/children: $!";
	my $kids = <$f> // '';
	$t += proc_cpu($_) for split ' ', $kids;
	return $t;
}

# The database sessions of a side: the agent's role, or the exporter's
# application_name.
sub session_pids
{
	my ($where) = @_;
	return [ split /\n/, $p->safe_psql('postgres', "SELECT pid FROM pg_stat_activity WHERE $where ORDER BY pid") ];
}
my %session_where = (ours => "usename = '$agent_user'", peer => "application_name = 'postgres_exporter'");
sub sessions_cpu { my ($pids) = @_; my $t = 0; $t += proc_cpu($_) for @$pids; return $t; }

# --- the client: HTTP/1.1 over one kept TLS connection, openssl s_client
# as the TLS layer (no Perl TLS module is installed), as Prometheus keeps a
# connection per target ---
my $tmp = PostgreSQL::Test::Utils::tempdir();
sub tls_connect
{
	my ($port) = @_;
	my ($rd, $wr);
	my $pid = IPC::Open2::open2($rd, $wr, 'sh', '-c',
		'exec openssl s_client -quiet -connect "127.0.0.1:$1" -CAfile "$2" -verify_return_error -verify_ip 127.0.0.1 2>>"$3"',
		'sh', $port, $pki->{ca}, "$tmp/s_client.err");
	binmode $rd;
	binmode $wr;
	my $c = { pid => $pid, rd => $rd, wr => $wr, buf => '', port => $port };
	push @clients, $c;
	return $c;
}

sub tls_close
{
	my ($c) = @_;
	close $c->{wr};
	kill 'TERM', $c->{pid};
	waitpid($c->{pid}, 0);
	@clients = grep { $_ != $c } @clients;
	return;
}

# http_get($c, $path, @headers): (status, body, seconds from the request's
# first byte sent to the answer's last byte read). Bodies come with a
# Content-Length (the agent) or chunked (Go's net/http).
sub http_get
{
	my ($c, $path, @headers) = @_;
	my $req = "GET $path HTTP/1.1\r\nHost: 127.0.0.1:$c->{port}\r\nAccept: text/plain;version=0.0.4\r\n"
	  . join('', map { "$_\r\n" } @headers) . "\r\n";
	my $buf = $c->{buf};
	my $more = sub {
		my $n = sysread($c->{rd}, $buf, 1 << 20, length $buf);
		die "the connection to port $c->{port} closed: " . slurp_file("$tmp/s_client.err") unless $n;
	};
	my $t0 = time;
	syswrite($c->{wr}, $req) == length($req) or die "write to port $c->{port}: $!";
	my $end;
	$more->() while ($end = index($buf, "\r\n\r\n")) < 0;
	my $head = substr($buf, 0, $end + 4, '');
	my ($code) = $head =~ m{\AHTTP/1\.[01] (\d{3})} or die "no HTTP answer: $head";
	my $body = '';
	if ($head =~ /^content-length:\s*(\d+)/mi)
	{
		my $len = $1;
		$more->() while length($buf) < $len;
		$body = substr($buf, 0, $len, '');
	}
	elsif ($head =~ /^transfer-encoding:\s*chunked/mi)
	{
		while (1)
		{
			my $e;
			$more->() while ($e = index($buf, "\r\n")) < 0;
			my ($size) = substr($buf, 0, $e + 2, '') =~ /\A([0-9a-fA-F]+)/ or die 'a bad chunk size';
			$size = hex($size);
			if ($size == 0)
			{
				# trailer lines, up to an empty one
				while (1)
				{
					$more->() while ($e = index($buf, "\r\n")) < 0;
					last if substr($buf, 0, $e + 2, '') eq "\r\n";
				}
				last;
			}
			$more->() while length($buf) < $size + 2;
			$body .= substr($buf, 0, $size);
			substr($buf, 0, $size + 2, '');
		}
	}
	else { die "an answer without a length: $head"; }
	my $t = time - $t0;
	$c->{buf} = $buf;
	return ($code, $body, $t);
}

my %conn;
my %route = (
	ours => [ '/metrics', "Authorization: Bearer $pki->{token}" ],
	peer => ['/metrics']);
sub scrape
{
	my ($side) = @_;
	my ($code, $body, $t) = http_get($conn{$side}, @{ $route{$side} });
	die "$side: GET /metrics answered $code" unless $code eq '200';
	return ($body, $t);
}

sub samples { my ($text) = @_; return scalar(() = $text =~ /^[^#\s]/mg); }
sub gauge { my ($text, $name) = @_; return $text =~ /^\Q$name\E(?:\{[^}]*\})? (\S+)$/m ? $1 : undef; }

# promtool check metrics of one exposition: 'ok' or its problems, shortened.
sub promtool
{
	my ($text) = @_;
	my ($o, $e) = ('', '');
	my $ok = IPC::Run::run([ 'promtool', 'check', 'metrics' ], '<', \$text, '>', \$o, '2>', \$e);
	my @problems = grep { /\S/ } split /\n/, $o . $e;
	return 'ok' if $ok && !@problems;
	my %kinds;
	$kinds{ (/^\S+ (.*)$/)[0] // $_ }++ for @problems;
	return ($ok ? 'passes, ' : 'fails, ') . scalar(@problems) . ' lint lines: '
	  . join('; ', map { "$kinds{$_}x \"$_\"" } sort { $kinds{$b} <=> $kinds{$a} || $a cmp $b } keys %kinds);
}

# --- the data ---
# A blob's sha256 and size, the same expressions on both nodes (ha_blobs)
# and in the images rows.
my $sha_of = "encode(sha256(convert_to('crawler_ha bench image ' || g, 'UTF8')), 'hex')";
# g is a bigint: g * 7919 leaves the integers at a million.
my $size_of = '8000 + (g * 7919) % 400000';
# Session number k of a session started here (its seed names it). A table,
# not a view: a view would run the regular expression again for each use of
# k in each row.
my $sessions_view = <<'SQL';
CREATE TEMP TABLE bench_s AS
SELECT c.id, (regexp_match(c.seeds[1], '^https://site([0-9]+)-0\.example/$'))[1]::integer AS k
  FROM crawl_sessions c;
SQL

# psql on each node at once, each a script: the two nodes' work overlaps
# (two cores).
sub psql_each
{
	my (@pairs) = @_;
	my @running;
	while (my ($node, $sql) = splice(@pairs, 0, 2))
	{
		my $err = '';
		push @running, [ $node, \$err, IPC::Run::start([ 'psql', '-XAtq', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr('postgres'),
				'-f', '-' ], '<', \$sql, '>', \my $o, '2>', \$err) ];
	}
	for my $r (@running) { $r->[2]->finish or die $r->[0]->name . ': ' . ${ $r->[1] }; }
	return;
}

# Sessions k0 .. k1-1 by crawl_start(); about (f_base + (k*37 % 100) *
# f_step) frontier rows for each (pages and images, 60 % of them open in a
# running session, 5 % failed, the failures spread over two hours); images
# g0 .. g1 spread over all the sessions, their blobs recorded as held on
# both nodes first; then every session's counters made consistent with its
# rows (so that the open URLs their bounds give are the rows' own), and
# sessions k = 5, 15, ... stopped, k = 10, 20, ... finished, each within the
# last day. Rows go in transactions of at most 100,000, so that the standby
# applies one while the primary writes the next. Returns the seconds of each
# phase.
sub load
{
	my (%o) = @_;
	my %took;
	my $t = time;
	# In sha256 order: the primary key is then filled left to right, not by
	# a split of a random page for each row.
	my $blobs = "INSERT INTO ha_blobs (sha256, size, stored_at, last_put_at, verified_at)
	             SELECT $sha_of, $size_of, now(), now(), now() FROM generate_series($o{g0}::bigint, $o{g1}) g ORDER BY 1";
	# the standby is read-only but for per-node tables in an explicit READ WRITE
	psql_each($p, $blobs, $s, "BEGIN READ WRITE; $blobs; COMMIT;");
	$took{blobs} = time - $t;

	my @errors = ('HTTP 404', 'HTTP 503', 'HTTP 500 at https://example.org/', 'Timeout was reached',
		'Could not resolve host: cdn.example', 'Could not connect to server',
		'SSL certificate problem: unable to get local issuer certificate', 'not an image: text/html',
		'too large: 300000000 bytes', 'disallowed by robots.txt', 'HTTP 429 (Retry-After 1 s)',
		'Failure when receiving data from the peer');
	my $errors = 'ARRAY[' . join(', ', map { "'$_'" } @errors) . ']';
	my $sql = <<"SQL";
SELECT crawl_start(ARRAY['https://site' || k || '-0.example/'], '{}') FROM generate_series($o{k0}, $o{k1} - 1) k;
$sessions_view
INSERT INTO crawl_hosts (host)
SELECT 'site' || s.k || '-' || h || '.example' FROM bench_s s, generate_series(0, 19) h
 WHERE s.k >= $o{k0} AND s.k < $o{k1}
ON CONFLICT (host) DO NOTHING;
SQL
	# 20 sessions are about 60,000 frontier rows.
	for (my $k = $o{k0}; $k < $o{k1}; $k += 20)
	{
		my $k1 = $k + 20 < $o{k1} ? $k + 20 : $o{k1};
		$sql .= <<"SQL";
INSERT INTO crawl_frontier (session_id, url, kind, depth, state, host, found_on, lease_owner, leased_at,
                            lease_expires_at, attempts, last_error, next_fetch_at, result, created_at, updated_at)
SELECT s.id, 'https://' || x.host || CASE WHEN x.page THEN '/page/' || j || '.html' ELSE '/img/' || j || '.jpg' END,
       CASE WHEN x.page THEN 'page' ELSE 'image' END, 1 + j % 4, x.state, x.host,
       'https://' || x.host || '/page/' || j / 10 || '.html',
       CASE WHEN x.state = 'leased' THEN 'bench-worker-' || j % 4 END,
       CASE WHEN x.state = 'leased' THEN now() END,
       CASE WHEN x.state = 'leased' THEN now() + interval '1 hour' END,
       CASE x.state WHEN 'queued' THEN 0 WHEN 'failed' THEN 3 ELSE 1 END,
       CASE WHEN x.state = 'failed' THEN ($errors)[1 + j % 12] END,
       now(),
       CASE WHEN x.state = 'done' THEN '{"http_status": 200}'::jsonb END,
       now() - interval '1 day',
       CASE x.state WHEN 'failed' THEN now() - make_interval(secs => (j * 13) % 7200)
                    WHEN 'done' THEN now() - make_interval(secs => (j * 7) % 86400)
                    ELSE now() END
  FROM bench_s s
 CROSS JOIN LATERAL generate_series(1, $o{f_base} + ((s.k * 37) % 100) * $o{f_step}) j
 CROSS JOIN LATERAL (
       SELECT 'site' || s.k || '-' || j % 20 || '.example' AS host, j % 10 < 3 AS page,
              CASE WHEN (j * 7919 + s.k * 31) % 1000 < 50 THEN 'failed'
                   WHEN (j * 7919 + s.k * 31) % 1000 < 400 OR (s.k % 10 = 0 AND s.k > 0) THEN 'done'
                   WHEN j <= 8 AND s.k % 10 <> 5 THEN 'leased'
                   ELSE 'queued' END AS state) x
 WHERE s.k >= $k AND s.k < $k1;
SQL
	}
	for (my $g = $o{g0}; $g <= $o{g1}; $g += 100000)
	{
		my $g1 = $g + 99999 < $o{g1} ? $g + 99999 : $o{g1};
		$sql .= <<"SQL";
WITH s AS (SELECT array_agg(id ORDER BY k) AS ids, array_agg(k ORDER BY k) AS ks FROM bench_s)
INSERT INTO images (url, filename, file_path, file_size, width, height, format, sha256, content_type, found_on,
                    session_id, http_status, created_at, updated_at)
SELECT 'https://' || y.host || '/media/' || g || '.' || y.ext, g || '.' || y.ext,
       left(y.sha, 2) || '/' || substr(y.sha, 3, 2) || '/' || y.sha || '.' || y.ext,
       $size_of, 200 + (g * 31) % 1800, 150 + (g * 17) % 1200, y.fmt, y.sha, 'image/' || y.fmt,
       'https://' || y.host || '/page/' || g % 500 || '.html', s.ids[1 + g % cardinality(s.ids)], 200,
       now() - make_interval(secs => ($o{g1} - g) * 0.1), now() - make_interval(secs => ($o{g1} - g) * 0.1)
  FROM s, generate_series(${g}::bigint, $g1) g
 CROSS JOIN LATERAL (
       SELECT $sha_of AS sha,
              'site' || s.ks[1 + g % cardinality(s.ids)] || '-' || g % 20 || '.example' AS host,
              (ARRAY['jpeg', 'jpeg', 'jpeg', 'jpeg', 'jpeg', 'jpeg', 'png', 'png', 'webp', 'gif'])[1 + g % 10] AS fmt,
              (ARRAY['jpg', 'jpg', 'jpg', 'jpg', 'jpg', 'jpg', 'png', 'png', 'webp', 'gif'])[1 + g % 10] AS ext) y
 -- the sha256 index and the trigger's probes of ha_blobs then walk their
 -- pages in order
 ORDER BY y.sha;
SQL
	}
	$sql .= <<"SQL";
-- a finished session has nothing open (its seed included)
UPDATE crawl_frontier f SET state = 'done', attempts = 1, updated_at = now() - interval '2 hours'
  FROM bench_s s
 WHERE f.session_id = s.id AND s.k % 10 = 0 AND s.k > 0 AND f.state IN ('queued', 'leased');
-- the event counters as a crawl would have left them, in slot 0 of this
-- node (the rows by state are the frontier trigger's, written at commit)
UPDATE crawl_session_counts SET pages_queued = 0, pages_fetched = 0, images_found = 0, images_stored = 0,
                                bytes_stored = 0, errors = 0, retries = 0;
INSERT INTO crawl_session_counts AS c (key, session_id, node_id, slot, pages_queued, pages_fetched, errors, retries,
                                       images_stored, bytes_stored, images_found)
SELECT f.session_id || '/' || n.node_id || '/0', f.session_id, n.node_id, 0, f.pages, f.pages_done, f.failed,
       f.failed * 2, coalesce(i.n, 0), coalesce(i.bytes, 0), f.images - f.images_done + coalesce(i.n, 0)
  FROM (SELECT session_id,
               count(*) FILTER (WHERE kind = 'page') AS pages,
               count(*) FILTER (WHERE kind = 'page' AND state = 'done') AS pages_done,
               count(*) FILTER (WHERE kind = 'image') AS images,
               count(*) FILTER (WHERE kind = 'image' AND state = 'done') AS images_done,
               count(*) FILTER (WHERE state = 'failed') AS failed
          FROM crawl_frontier GROUP BY session_id) f
  LEFT JOIN (SELECT session_id, count(*) AS n, sum(file_size) AS bytes FROM images GROUP BY session_id) i
    USING (session_id)
 CROSS JOIN ha_node n
ON CONFLICT (key) DO UPDATE
   SET pages_queued = EXCLUDED.pages_queued, pages_fetched = EXCLUDED.pages_fetched, errors = EXCLUDED.errors,
       retries = EXCLUDED.retries, images_stored = EXCLUDED.images_stored, bytes_stored = EXCLUDED.bytes_stored,
       images_found = EXCLUDED.images_found, updated_at = now();
UPDATE crawl_sessions c
   SET status = CASE WHEN s.k % 10 = 5 THEN 'stopped' ELSE 'finished' END,
       started_at = now() - make_interval(mins => s.k * 10) - interval '6 hours',
       finished_at = now() - make_interval(mins => s.k * 10)
  FROM bench_s s
 WHERE c.id = s.id AND s.k > 0 AND s.k % 5 = 0 AND c.status = 'running';
UPDATE crawl_sessions c SET started_at = now() - make_interval(mins => s.k * 7) - interval '1 hour'
  FROM bench_s s WHERE c.id = s.id AND c.status = 'running' AND s.k >= $o{k0};
SQL
	$t = time;
	psql_each($p, $sql);
	$took{rows} = time - $t;

	# Until the standby has every row: its apply worker is then idle.
	$t = time;
	my $state = "SELECT (SELECT count(*) FROM images) || '/' || (SELECT count(*) FROM crawl_frontier) || '/' "
	  . "|| (SELECT sum(errors + images_found + pages_queued + queued + done) FROM crawl_session_totals)";
	my $want = $p->safe_psql('postgres', $state);
	$s->poll_query_until('postgres', "$state = '$want'") or die "the standby did not get the rows ($want)";
	$took{standby} = time - $t;
	# What autovacuum would have done by then (statistics, the visibility map,
	# hint bits), and a checkpoint, so that neither runs among the scrapes.
	$t = time;
	my $vacuum = "VACUUM (ANALYZE) crawl_sessions, crawl_session_counts, crawl_hosts, crawl_frontier, images, ha_blobs, ha_blob_wanted;\nCHECKPOINT;";
	psql_each($p, $vacuum, $s, $vacuum);
	$took{vacuum} = time - $t;
	my $wanted = $p->safe_psql('postgres', 'SELECT count(*) FROM ha_blob_wanted');
	die "$wanted blobs wanted on the primary: the load should have recorded every blob as held" if $wanted > 0;
	return \%took;
}

# --- the measure ---
sub p95 { my @v = sort { $a <=> $b } @_; return $v[ ceil(0.95 * @v) - 1 ]; }
sub ms { my ($v) = @_; return defined $v ? sprintf($v * 1000 >= 10 ? '%.1f' : '%.2f', $v * 1000) : 'n/a'; }
sub num { my ($v) = @_; my $t = sprintf('%.0f', $v); 1 while $t =~ s/^(\d+)(\d{3})/$1,$2/; return $t; }
sub ratio { my ($a, $b) = @_; return defined $a && defined $b && $b > 0 ? sprintf('**%.2fx**', $a / $b) : ''; }

my %summary;
sub measure
{
	my ($key, $label) = @_;
	%conn = (ours => tls_connect($ap->{ha_port}), peer => tls_connect($exp_port));
	my (%body, %t, %sql, %pg);
	# Warm-up: the connections, the caches, each side's prepared state.
	for (1 .. 5) { scrape($_) for qw(ours peer); }
	my %check = map { $_ => promtool((scrape($_))[0]) } qw(ours peer);
	my %pids = map { $_ => session_pids($session_where{$_}) } qw(ours peer);

	# Idle rates (the agents' file sync polls its queue every 200 ms, the HA
	# workers check each other every second), over 3 s: longer than the
	# rounds at either size.
	my $idle_s = 3;
	my %i0 = (agent => proc_cpu($agent_pid), exporter => proc_cpu($exp_pid), cluster => cluster_cpu($p),
		ours => sessions_cpu($pids{ours}), peer => sessions_cpu($pids{peer}));
	my $w0 = time;
	sleep($idle_s);
	my %i1 = (agent => proc_cpu($agent_pid), exporter => proc_cpu($exp_pid), cluster => cluster_cpu($p),
		ours => sessions_cpu($pids{ours}), peer => sessions_cpu($pids{peer}));
	my $idle_wall = time - $w0;
	my %idle = map { $_ => ($i1{$_} - $i0{$_}) / $idle_wall } keys %i0;

	my %l0 = (agent => proc_cpu($agent_pid), exporter => proc_cpu($exp_pid),
		agent_ticks => proc_ticks($agent_pid), exporter_ticks => proc_ticks($exp_pid),
		ours => sessions_cpu($pids{ours}), peer => sessions_cpu($pids{peer}));
	my $loop0 = time;
	for my $i (1 .. $n_scrapes)
	{
		for my $side ($i % 2 ? qw(ours peer) : qw(peer ours))
		{
			my $c0 = cluster_cpu($p);
			my ($b, $t) = scrape($side);
			my $c1 = cluster_cpu($p);
			push @{ $t{$side} }, $t;
			push @{ $pg{$side} }, $c1 - $c0 - $idle{cluster} * $t;
			push @{ $sql{$side} }, gauge($b, $side eq 'ours' ? 'crawler_ha_scrape_sql_duration_seconds'
				  : 'pg_exporter_last_scrape_duration_seconds');
			$body{$side} = $b;
		}
	}
	my $loop = time - $loop0;
	my %l1 = (agent => proc_cpu($agent_pid), exporter => proc_cpu($exp_pid),
		agent_ticks => proc_ticks($agent_pid), exporter_ticks => proc_ticks($exp_pid),
		ours => sessions_cpu($pids{ours}), peer => sessions_cpu($pids{peer}));
	# The sessions counted are those that lived through the scrapes; a side
	# that opened others meanwhile has no figure of its own sessions.
	my %kept = map { my $sd = $_; $sd => (join(',', @{ session_pids($session_where{$sd}) }) eq join(',', @{ $pids{$sd} })) }
	  qw(ours peer);
	tls_close($_) for values %conn;

	my %proc = (
		ours => ($l1{agent} - $l0{agent} - $idle{agent} * $loop) / $n_scrapes,
		peer => ($l1{exporter} - $l0{exporter} - $idle{exporter} * $loop) / $n_scrapes);
	my %ticks = (
		ours => ($l1{agent_ticks} - $l0{agent_ticks}) / $n_scrapes,
		peer => ($l1{exporter_ticks} - $l0{exporter_ticks}) / $n_scrapes);
	my %own = map { $_ => ($kept{$_} && @{ $pids{$_} }) ? ($l1{$_} - $l0{$_} - $idle{$_} * $loop) / $n_scrapes : undef }
	  qw(ours peer);
	my %pgm = map { $_ => median(@{ $pg{$_} }) } qw(ours peer);
	my %pga = map { my $sd = $_; my $sum = 0; $sum += $_ for @{ $pg{$sd} }; $sd => $sum / @{ $pg{$sd} } } qw(ours peer);
	my %total = map { $_ => $proc{$_} + $pga{$_} } qw(ours peer);
	my %wall = map { $_ => median(@{ $t{$_} }) } qw(ours peer);
	my %sqlm = map { my $sd = $_; $sd => (grep { !defined } @{ $sql{$sd} }) ? undef : median(@{ $sql{$sd} }) } qw(ours peer);
	my %sqlp = map { my $sd = $_; $sd => (grep { !defined } @{ $sql{$sd} }) ? undef : p95(@{ $sql{$sd} }) } qw(ours peer);
	$summary{$key} = { label => $label, wall => \%wall, total => \%total, proc => \%proc, pg => \%pga,
		sql => \%sqlm, bytes => { map { $_ => length $body{$_} } qw(ours peer) } };

	out("## $label: $n_scrapes scrapes of each side, interleaved, over one kept TLS connection each");
	out("| per scrape | crawler-ha agent, `/metrics` | postgres_exporter $exp_version | ours / peer |");
	out('|---|---:|---:|---:|');
	out(sprintf('| wall time of GET /metrics, median ms | %s | %s | %s |', ms($wall{ours}), ms($wall{peer}),
		ratio($wall{ours}, $wall{peer})));
	out(sprintf('| wall time, p95 ms | %s | %s | %s |', ms(p95(@{ $t{ours} })), ms(p95(@{ $t{peer} })),
		ratio(p95(@{ $t{ours} }), p95(@{ $t{peer} }))));
	out(sprintf('| the database part as each reports it, median ms (`crawler_ha_scrape_sql_duration_seconds`; '
		  . '`pg_exporter_last_scrape_duration_seconds`) | %s | %s | %s |', ms($sqlm{ours}), ms($sqlm{peer}),
		ratio($sqlm{ours}, $sqlm{peer})));
	out(sprintf('| the same, p95 ms | %s | %s | |', ms($sqlp{ours}), ms($sqlp{peer})));
	out(sprintf('| CPU of the process (agent; exporter), all threads, ms | %s | %s | %s |', ms($proc{ours}),
		ms($proc{peer}), ratio($proc{ours}, $proc{peer})));
	out(sprintf('| the same from /proc/PID/stat utime+stime (10 ms ticks, idle not subtracted), ms | %s | %s | |',
		ms($ticks{ours}), ms($ticks{peer})));
	out(sprintf('| CPU of PostgreSQL (the primary\'s cluster during the scrape), mean ms | %s | %s | %s |',
		ms($pga{ours}), ms($pga{peer}), ratio($pga{ours}, $pga{peer})));
	out(sprintf('| the same, median ms | %s | %s | |', ms($pgm{ours}), ms($pgm{peer})));
	out(sprintf('| of which the side\'s own database sessions (%d; %d), ms | %s | %s | |', scalar @{ $pids{ours} },
		scalar @{ $pids{peer} }, map { defined $own{$_} ? ms($own{$_}) : 'n/a (not the same sessions throughout)' } qw(ours peer)));
	out(sprintf('| **CPU per scrape, process + PostgreSQL, ms** | **%s** | **%s** | %s |', ms($total{ours}),
		ms($total{peer}), ratio($total{ours}, $total{peer})));
	out(sprintf('| exposition, bytes | %s | %s | %s |', num(length $body{ours}), num(length $body{peer}),
		ratio(length $body{ours}, length $body{peer})));
	out(sprintf('| exposition, samples | %s | %s | %s |', num(samples($body{ours})), num(samples($body{peer})),
		ratio(samples($body{ours}), samples($body{peer}))));
	out("| promtool check metrics | $check{ours} | $check{peer} | |");
	out(sprintf('## %s: idle rates subtracted (CPU ms per s): agent %.2f, exporter %.2f, cluster %.2f, agent\'s '
		  . 'sessions %.2f, exporter\'s %.2f; the rounds took %.1f s', $label, map({ $idle{$_} * 1000 }
			  qw(agent exporter cluster ours peer)), $loop));
	return;
}

# What ha_metrics() sees, for the headings.
sub describe
{
	my ($row) = $p->safe_psql('postgres', <<'SQL');
SELECT (SELECT count(*) FROM crawl_sessions) || '|'
    || (SELECT count(*) FROM crawl_sessions WHERE status = 'running') || '|'
    || (SELECT count(*) FROM crawl_sessions WHERE status = 'running' OR finished_at >= now() - interval '24 hours') || '|'
    || (SELECT count(*) FROM images) || '|' || (SELECT count(*) FROM crawl_frontier) || '|'
    || (SELECT count(*) FROM crawl_frontier WHERE state IN ('queued', 'leased')) || '|'
    || (SELECT count(*) FROM ha_blobs) || '|'
    || (SELECT count(*) FROM (SELECT * FROM ha_metrics()) m)
SQL
	my ($n, $running, $listed, $img, $fr, $open, $blobs, $rows) = split /\|/, $row;
	return sprintf('%s sessions (%s running, %s listed), %s images rows, %s frontier rows (%s open), %s blobs held; '
		  . 'ha_metrics() %s rows', num($n), num($running), num($listed), num($img), num($fr), num($open), num($blobs),
		num($rows));
}

load(k0 => 0, k1 => 1, g0 => 1, g1 => 20, f_base => 60, f_step => 0);
my $small = 'scale (a): ' . describe();
measure('a', $small);

my $t0 = time;
my $took = load(k0 => 1, k1 => $n_sessions, g0 => 21, g1 => $n_images, f_base => 600, f_step => 48);
my $loaded = time - $t0;
my $large = 'scale (b): ' . describe();
out(sprintf('## scale (b) loaded in %.0f s: blobs held on both nodes %.0f s, rows on the primary %.0f s, the standby '
	  . 'caught up %.0f s later, VACUUM ANALYZE and CHECKPOINT on both %.0f s', $loaded, @$took{qw(blobs rows standby vacuum)}));
measure('b', $large);

# auto_explain of two ha_metrics() calls, in a session warmed as the
# agent's are (the function compiled, its statements' plans cached): every
# statement each runs, with its plan and buffers, sent to this client as
# notices. The first without per-node timing (its durations are near those
# of a scrape: timing every node of a plan that counts 100,000 index
# entries doubles its cost), the second with it, for where the time goes
# inside a statement.
if ($explain_file)
{
	my ($o, $e) = ('', '');
	my $call = "SET ROLE crawler_ha_reader;\nSELECT count(*) FROM ha_metrics();\nRESET ROLE;\n";
	$p->psql('postgres', <<"SQL", stdout => \$o, stderr => \$e, on_error_die => 1);
LOAD 'auto_explain';
SET auto_explain.log_analyze = on;
SET auto_explain.log_buffers = on;
SET auto_explain.log_nested_statements = on;
SET auto_explain.log_level = notice;
SET client_min_messages = notice;
@{[ $call x 10 ]}
SET auto_explain.log_min_duration = 0;
SET auto_explain.log_timing = off;
\\warn === auto_explain.log_timing = off
$call
SET auto_explain.log_timing = on;
\\warn === auto_explain.log_timing = on
$call
SQL
	open my $ef, '>', $explain_file or die "$explain_file: $!";
	print $ef $e;
	close $ef;
}

my $cores = `nproc`;
chomp $cores;
out("## summary, $cores cores: per scrape, medians of wall time, mean CPU (process + PostgreSQL)");
out('| size | agent, wall ms | exporter, wall ms | **wall, ours / peer** | agent + PostgreSQL, CPU ms | '
	  . 'exporter + PostgreSQL, CPU ms | **CPU, ours / peer** | bytes, ours; peer |');
out('|---|---:|---:|---:|---:|---:|---:|---:|');
for my $k (qw(a b))
{
	my $r = $summary{$k};
	my ($size) = $r->{label} =~ /^(scale \(.\))/;
	out(sprintf('| %s | %s | %s | %s | %s | %s | %s | %s; %s |', $size, ms($r->{wall}{ours}), ms($r->{wall}{peer}),
		ratio($r->{wall}{ours}, $r->{wall}{peer}), ms($r->{total}{ours}), ms($r->{total}{peer}),
		ratio($r->{total}{ours}, $r->{total}{peer}), num($r->{bytes}{ours}), num($r->{bytes}{peer})));
}

agent_stop($_) for @agents;
@agents = ();
$exporter->signal('TERM');
eval { $exporter->finish };
@started = ();
$_->stop for ($p, $s);
