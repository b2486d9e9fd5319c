# bench/files/files.pl: what storing image files through the node agents
# costs, against peers measured in the same run. Run through bench/files/run.
#  1. Crawl: generated sites of FILES_IMAGES small PNGs (one site per crawl,
#     no bytes in common, each under its own loopback address 127.0.0.K),
#     crawled by crawler-worker storing to a local directory (the agents
#     stopped: a pair without them) and through the primary's agent (TLS,
#     async replication), FILES_ROUNDS rounds each, alternating, on the same
#     pair. A local round's rows are deleted after it (their files are in no
#     agent's store). Wall time ratio, agents / local.
#  2. File sync lag, from the agent rounds: for each new blob, from its row's
#     image_record() on the primary (images.created_at) to the standby's
#     agent holding it (ha_blobs.stored_at on the standby), p50 and p99.
#  3. Catch-up: FILES_CATCHUP_MB of 1 MiB blobs recorded on the primary; the
#     standby's agent restarts on an empty store and fetches everything (from
#     its start to the last blob recorded, ha_blobs.stored_at); MB/s
#     against rsync -a of the primary's store from an rsync daemon on
#     loopback into an empty directory, and against rsync -a then sync -f
#     (durable, as the agent), same bytes, FILES_CATCHUP_ROUNDS rounds in
#     rotating order, each copy after an untimed sync, medians; and, once,
#     against rsync -a --fsync. The agents catch up over TLS and, as
#     unencrypted as the rsync daemon, over plain HTTP.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Time::HiRes qw(time sleep);
use File::Path qw(make_path remove_tree);
use IPC::Run;
use Digest::SHA;
use CrawlerHA::Test qw(ha_pair ha_multihost median);
use CrawlerHA::Agent qw(agent_start agent_stop agent_kill agent_pki agent_curl agent_blob_files agent_wait_log);

my $images = $ENV{FILES_IMAGES} // 2000;
my $rounds = $ENV{FILES_ROUNDS} // 3;
my $catchup_mb = $ENV{FILES_CATCHUP_MB} // 200;
my $catchup_rounds = $ENV{FILES_CATCHUP_ROUNDS} // 3;
my $agent_log = $ENV{FILES_AGENT_LOG} // 'info';  # debug: one line per blob
# FILES_AGENT_ARGS: more agent options, e.g. '--sync-concurrency 4'
my @agent_args = ('--log-level', $agent_log, split(' ', $ENV{FILES_AGENT_ARGS} // ''));
my $worker = $ENV{CRAWLER_WORKER} or die 'CRAWLER_WORKER';
# FILES_PERF=FILE: a system-wide perf profile (perf record -a -g) of each
# crawl, FILE.N for the Nth crawl, and of the catch-up, FILE.catchup (needs
# kernel.perf_event_paranoid = -1)
my $perf = $ENV{FILES_PERF} // '';
sub profile_start
{
	my ($file) = @_;
	return undef unless $perf;
	my $profiler = IPC::Run::start(['perf', 'record', '-a', '-g', '-F', '997', '-o', $file], '>', \my $po, '2>', \my $pe);
	sleep 0.5;
	return $profiler;
}
sub profile_end { my ($profiler) = @_; if ($profiler) { $profiler->signal('INT'); $profiler->finish; } }
my $tmp = PostgreSQL::Test::Utils::tempdir();

sub pct { my ($p, @v) = @_; my @s = sort { $a <=> $b } @v; return $s[ int(($#s) * $p / 100 + 0.5) ]; }
sub out { my ($l) = @_; print "$l\n"; }

# --- the sites, one per crawl, served by nginx on 127.0.0.K ------------------
# Each crawl gets a site of its own (no image bytes in common): a blob stored
# by an earlier round would make the next one cheaper, and a local round's
# rows would send the standby's agent after blobs no agent holds.
my $port = PostgreSQL::Test::Cluster::get_free_port();
my $servers = '';
for my $k (2 .. (2 * $rounds + 1))
{
	system("$ENV{TESTDIR}/../scripts/gen-sample-site", '--bench-images', $images, '--bench-pages', 100,
		'--bench-variant', $k, "$tmp/site$k") == 0 or die;
	$servers .= "server { listen 127.0.0.$k:$port; root $tmp/site$k; }\n";
}
open my $nc, '>', "$tmp/nginx.conf" or die;
print $nc "worker_processes 2; daemon off; pid $tmp/nginx.pid; error_log $tmp/nginx.err;\n"
  . "events { worker_connections 1024; }\nhttp { include /etc/nginx/mime.types; access_log off; keepalive_requests 100000;\n"
  . "client_body_temp_path $tmp/b; proxy_temp_path $tmp/p; fastcgi_temp_path $tmp/f; uwsgi_temp_path $tmp/u; scgi_temp_path $tmp/s;\n"
  . "$servers}\n";
close $nc;
my $nginx = IPC::Run::start([ '/usr/sbin/nginx', '-e', 'stderr', '-p', $tmp, '-c', "$tmp/nginx.conf" ]);
sleep 0.5;

# A server set up as in production, not as the test framework's (1 MB of
# shared buffers, every statement logged, fsync off): those settings make
# every SQL call the agents add cost several times what it costs a real
# node, and fsync off would flatter the local crawl's commits.
my $server_conf = "shared_buffers = '256MB'\nlog_statement = 'none'\nfsync = on\n"
  . "log_min_duration_statement = -1\nlog_replication_commands = off\n";
# FILES_STATEMENTS=1: pg_stat_statements on both nodes, the costliest
# statements of the crawls and of the catch-up, each printed after it
my $statements = $ENV{FILES_STATEMENTS} // '';
$server_conf .= "shared_preload_libraries = 'crawler_ha,pg_cron,pg_stat_statements'\npg_stat_statements.track = all\n"
  if $statements;
my ($p, $s) = ha_pair(names => [ 'files_a', 'files_b' ], conf => $server_conf);
$_->safe_psql('postgres', 'BEGIN READ WRITE; CREATE EXTENSION pg_stat_statements; COMMIT') for ($statements ? ($p, $s) : ());
$_->safe_psql('postgres', 'BEGIN READ WRITE; CREATE ROLE crawler LOGIN IN ROLE crawler_ha_writer; COMMIT') for ($p, $s);
my $ap = agent_start($p, args => \@agent_args);
my $as = agent_start($s, args => \@agent_args);
my $pki = agent_pki();
my $db = ha_multihost($p, $s) . ' user=crawler';

sub crawl
{
	my ($mode, $k) = @_;
	my @store = $mode eq 'local'
	  ? ('--storage', "$tmp/local$k")
	  : ('--storage-agent', '--agent-token-file', $pki->{token_file}, '--agent-ca-file', $pki->{ca}, '--spool', "$tmp/spool$k");
	my @cmd = ($worker, 'crawl', '--db', $db, @store, '--seed', "http://127.0.0.$k:$port/", '--delay-ms', '0',
		'--per-host', '64', '--concurrency', '16', '--host-connections', '16', '--no-robots', '--max-depth', '1000',
		'--log-level', 'warning');
	my ($o, $e) = ('', '');
	my $profiler = profile_start("$perf.$k");
	my $t0 = time;
	IPC::Run::run(\@cmd, '>', \$o, '2>', \$e) or die "crawl $mode failed: $e";
	my $wall = time - $t0;
	profile_end($profiler);
	my $sid = $p->safe_psql('postgres', 'SELECT max(id) FROM crawl_sessions');
	my $n = $p->safe_psql('postgres', "SELECT count(*) FROM images WHERE session_id = $sid");
	die "crawl $mode stored $n of $images" unless $n == $images;
	return ($wall, $sid);
}

# --- 1 and 2 ----------------------------------------------------------------
my (@local, @agent, @lag);
my $k = 2;
for my $r (1 .. $rounds)
{
	for my $mode ($r % 2 ? ('local', 'agent') : ('agent', 'local'))
	{
		if ($mode eq 'local')
		{
			agent_stop($_) for ($ap, $as);
			my ($wall, $sid) = crawl($mode, $k++);
			push @local, $wall;
			$p->safe_psql('postgres', "SELECT count(image_delete(id)) FROM images WHERE session_id = $sid");
			$s->poll_query_until('postgres', "SELECT count(*) = 0 FROM images WHERE session_id = $sid") or die 'delete';
			next;
		}
		for my $a (grep { !$_->{harness} } ($ap, $as))
		{
			agent_start($a->{node}, agent => $a, args => \@agent_args);
			agent_wait_log($a, qr/file sync: peer agent https/) or die 'peer';
		}
		my ($wall, $sid) = crawl($mode, $k++);
		push @agent, $wall;
		$s->poll_query_until('postgres', 'SELECT blobs_missing = 0 FROM ha_file_sync_status()') or die 'sync';
		my %made = map { split /\|/ } split /\n/, $p->safe_psql('postgres',
			"SELECT sha256, extract(epoch FROM min(created_at)) FROM images WHERE session_id = $sid GROUP BY 1");
		my %held = map { split /\|/ } split /\n/, $s->safe_psql('postgres',
			'SELECT sha256, extract(epoch FROM stored_at) FROM ha_blobs');
		push @lag, map { $held{$_} - $made{$_} } grep { defined $held{$_} } keys %made;
	}
	out(sprintf('# round %d: local %.2f s, agents %.2f s', $r, $local[-1], $agent[-1]));
}
# The costliest statements of both nodes since the last call, with FILES_STATEMENTS.
sub statements
{
	my ($what) = @_;
	return unless $statements;
	for my $n ($p, $s)
	{
		out("# statements of $what on " . $n->name . ' (calls, total ms, query)');
		out("#   $_") for split /\n/, $n->safe_psql('postgres',
			"SELECT calls || ' ' || round(total_exec_time) || ' ' || left(regexp_replace(query, '\\s+', ' ', 'g'), 110) "
			  . 'FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT 12');
		$n->safe_psql('postgres', 'SELECT pg_stat_statements_reset()');
	}
}
statements('the crawls');
out('| crawl of ' . $images . ' images | median wall s | rounds |');
out('|---|---|---|');
out(sprintf('| --storage DIR (local) | %.2f | %s |', median(@local), join(' ', map { sprintf '%.2f', $_ } @local)));
out(sprintf('| --storage-agent (TLS, async) | %.2f | %s |', median(@agent), join(' ', map { sprintf '%.2f', $_ } @agent)));
out(sprintf('| ratio agents / local | %.2fx | goal <= 1.3x |', median(@agent) / median(@local)));
out('');
out('| file sync lag, row commit to blob on the standby | p50 ms | p99 ms | max ms | blobs |');
out('|---|---|---|---|---|');
out(sprintf('| async, during the crawls | %.0f | %.0f | %.0f | %d |', 1000 * pct(50, @lag), 1000 * pct(99, @lag),
	1000 * pct(100, @lag), scalar @lag));

# --- 3: catch-up ------------------------------------------------------------
# An even number of rounds ends with a local crawl, which stopped the agents.
for my $a (grep { !$_->{harness} } ($ap, $as))
{
	agent_start($a->{node}, agent => $a, args => \@agent_args);
	agent_wait_log($a, qr/file sync: peer agent https/) or die 'peer';
}
my $sid = $p->safe_psql('postgres', "SELECT crawl_start(ARRAY['http://catchup.test/'])");
for my $i (1 .. $catchup_mb)
{
	my $f = "$tmp/blob";
	open my $fh, '>:raw', $f or die;
	print $fh pack('N', $i) x (262144);    # 1 MiB, distinct per blob, incompressible enough for a copy
	close $fh;
	my $sha = Digest::SHA->new(256)->addfile($f)->hexdigest;
	my ($code, $body) = agent_curl($ap, '-T', $f, "/api/blobs/$sha.bin");
	die "PUT $code $body" unless $code =~ /^20/;
	$p->safe_psql('postgres', "SELECT image_record($sid, 'http://catchup.test/$i.bin', '$sha', '"
		  . substr($sha, 0, 2) . '/' . substr($sha, 2, 2) . "/$sha.bin', 1048576, NULL, NULL, 'bin', 'application/octet-stream')");
}
$s->poll_query_until('postgres', "SELECT count(*) > 0 FROM images WHERE url = 'http://catchup.test/$catchup_mb.bin'") or die;
$s->poll_query_until('postgres', 'SELECT blobs_missing = 0 FROM ha_file_sync_status()') or die 'sync';
my $bytes = $p->safe_psql('postgres', 'SELECT sum(size) FROM ha_blobs');
statements('the catch-up\'s preparation');

# rsync: a daemon on loopback serving the primary's store, into an empty dir.
my $rport = PostgreSQL::Test::Cluster::get_free_port();
open my $rc, '>', "$tmp/rsyncd.conf" or die;
print $rc "use chroot = no\npid file = $tmp/rsyncd.pid\n[store]\npath = $ap->{store}\nread only = yes\n";
close $rc;
my $rsyncd = IPC::Run::start([ 'rsync', '--daemon', '--no-detach', "--config=$tmp/rsyncd.conf", "--port=$rport", '--address=127.0.0.1' ]);
sleep 0.5;
# Runs a command to its end, dying with its stderr when it fails. With its
# output on pipes: without any, IPC::Run notices the child's end only at its
# next half-second poll (sleep 0.7 measured 1.14 s), which timed copies
# would count.
sub run_piped
{
	my (@cmd) = @_;
	my ($o, $e) = ('', '');
	IPC::Run::run(\@cmd, '>', \$o, '2>', \$e) or die "$cmd[0]: $e";
}

sub rsync_copy
{
	my ($dest, @extra) = @_;
	my $start = time;
	run_piped('rsync', '-a', @extra, '--exclude=.tmp', '--exclude=.store-id', '--exclude=.corrupt',
		"rsync://127.0.0.1:$rport/store/", "$dest/");
	return time - $start;
}

# One catch-up: the standby's agent restarts on an empty store. The old
# store is moved aside, not removed, until the copies are measured: ext4
# without a journal skips inodes freed in the last 60 s when it allocates
# new ones (recently_deleted()), so thousands of files removed just before
# a copy would make each of its file creations scan the inode table.
# With $plain, both agents serve plain HTTP (as the rsync daemon does): the
# primary's agent is restarted in that mode first, untimed, and the standby
# waits until its health check has learned the new URL.
sub agent_catchup
{
	my ($r, $plain) = @_;
	my $moved = "$tmp/store-before-catchup-$r" . ($plain ? '-plain' : '');
	agent_stop($as);
	if (($ap->{plain} // 0) != $plain)
	{
		agent_stop($ap);
		$ap = agent_start($p, agent => $ap, args => \@agent_args, plain => $plain);
		$s->poll_query_until('postgres', "SELECT agent_url = '$ap->{url}' FROM ha_status() WHERE node_name = '"
			  . $p->name . "'") or die 'the standby did not learn the primary agent\'s new URL';
	}
	rename($as->{store}, $moved) or die "rename: $!";
	my $profiler = $r == 1 && !$plain ? profile_start("$perf.catchup") : undef;
	my $t0 = time;
	$as = agent_start($s, agent => $as, args => \@agent_args, plain => $plain);
	# The end is when the last blob was recorded (ha_blobs.stored_at, same
	# machine's clock), read once the queue is empty: asked once a second,
	# so that a psql started every 100 ms does not take the cores from the
	# catch-up.
	for (my $tries = 0;; $tries++)
	{
		last if $s->safe_psql('postgres', 'SELECT blobs_missing = 0 AND blobs_held > 0 FROM ha_file_sync_status()') eq 't';
		die 'catch-up did not end in 300 s' if $tries > 300;
		sleep 1;
	}
	my $took = $s->safe_psql('postgres', 'SELECT extract(epoch FROM max(stored_at)) FROM ha_blobs') - $t0;
	profile_end($profiler);
	return $took;
}

# Every timed copy starts from a page cache with nothing dirty (an untimed
# sync before it): the agent's group syncs write back whatever is dirty on
# the file system, so an agent run right after an rsync would otherwise pay
# for writing rsync's copy to disk too.
sub settled { run_piped('sync') }

# rsync -a, then one syncfs of the copy (sync -f): the peer that promises
# what the agent promises, every blob on disk before it is counted.
sub rsync_durable_copy
{
	my ($dest) = @_;
	my $took = rsync_copy($dest);
	my $start = time;
	run_piped('sync', '-f', $dest);
	return $took + time - $start;
}

# FILES_CATCHUP_ROUNDS rounds of the agent over TLS, the agent over plain
# HTTP (as unencrypted as the rsync daemon), rsync -a and rsync -a + sync -f,
# in an order that rotates from round to round (the same machine's copies of
# the same bytes differ by up to half from one minute to the next): medians.
# Then, once, rsync -a --fsync (an fsync per file).
my %took = (agent => [], plain => [], rsync => [], durable => []);
my @order = ('agent', 'plain', 'rsync', 'durable');
for my $r (1 .. $catchup_rounds)
{
	my $k = ($r - 1) % @order;
	for my $who (@order[ $k .. $#order ], @order[ 0 .. $k - 1 ])
	{
		settled();
		my $t = $who eq 'agent' ? agent_catchup($r, 0)
		  : $who eq 'plain' ? agent_catchup($r, 1)
		  : $who eq 'rsync' ? rsync_copy("$tmp/rsync-copy-$r")
		  : rsync_durable_copy("$tmp/rsync-durable-copy-$r");
		push @{ $took{$who} }, $t;
	}
	out(sprintf('# catch-up round %d: agent %.2f s, agent over plain HTTP %.2f s, rsync -a %.2f s, rsync -a + sync -f %.2f s',
		$r, map { $took{$_}[-1] } @order));
}
statements('the catch-ups');
settled();
my $rsync_fsync_s = rsync_copy("$tmp/rsync-copy-fsync", '--fsync');
$rsyncd->kill_kill;
remove_tree(glob("$tmp/store-before-catchup-*"));
my %m = map { $_ => median(@{ $took{$_} }) } @order;
my $mb = $bytes / 1048576;
my $rounds_of = sub { join(' ', map { sprintf '%.2f', $_ } @{ $took{ $_[0] } }) };
my $ratios = sub {
	my ($agent, $peer) = @_;
	join(' ', map { sprintf '%.2fx', $took{$peer}[$_] / $took{$agent}[$_] } 0 .. $catchup_rounds - 1);
};
out('');
out('| catch-up of an empty store | MB | median seconds | MB/s | rounds |');
out('|---|---|---|---|---|');
for (['agent', 'crawler-ha agent (TLS, verified by sha256, fsynced)'],
	['plain', 'crawler-ha agent over plain HTTP (verified by sha256, fsynced)'],
	['rsync', 'rsync -a from an rsync daemon on loopback'],
	['durable', 'rsync -a, then sync -f of the copy (durable, as the agent)'])
{
	my ($who, $what) = @$_;
	out(sprintf('| %s | %.0f | %.2f | %.0f | %s |', $what, $mb, $m{$who}, $mb / $m{$who}, $rounds_of->($who)));
}
out(sprintf('| rsync -a --fsync (durable, an fsync per file) | %.0f | %.2f | %.0f | once |', $mb, $rsync_fsync_s, $mb / $rsync_fsync_s));
out(sprintf('| ratio of rates, agent (TLS) / rsync -a (medians) | %.2fx | goal >= 1.00x | | %s |', $m{rsync} / $m{agent}, $ratios->('agent', 'rsync')));
out(sprintf('| ratio of rates, agent (plain HTTP) / rsync -a (medians) | %.2fx | goal >= 1.00x | | %s |', $m{rsync} / $m{plain}, $ratios->('plain', 'rsync')));
out(sprintf('| ratio of rates, agent (TLS) / rsync -a + sync -f (medians) | %.2fx | | | %s |', $m{durable} / $m{agent}, $ratios->('agent', 'durable')));
out(sprintf('| ratio of rates, agent (TLS) / rsync -a --fsync | %.2fx | | | |', $rsync_fsync_s / $m{agent}));

agent_stop($_) for ($ap, $as);
$nginx->kill_kill;
$_->stop for ($p, $s);
