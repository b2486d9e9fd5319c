# Backups proven by restoring them, on a real pair with agents and a real
# crawl (docs/backup.md, "Restore"):
#  - the restore test: `crawler-ha backup test-restore` restores a backup
#    into a scratch cluster, finds the figures and blobs as recorded, and
#    records that (row and 'restore' event); a backup whose recorded figures
#    are not what it restores to fails it, recorded too;
#  - a crawl stores its images through the primary's agent and is cut off
#    (its worker killed); a full backup; a moment T; images and a session
#    after T; an incremental backup; a failover between backups; a full
#    backup on the new primary's own stanza; an image after it, its WAL
#    archived; then both nodes lost, data directories and stores deleted;
#  - `crawler-ha restore --time T` restores the old primary's stanza to T:
#    exactly the rows before T, with their blobs (one copied into the
#    repository only by the later backup), each verified; a time after
#    the failover takes the new primary's stanza;
#  - `crawler-ha restore --latest` takes the stanza of the highest term,
#    replays its whole archive, names the one blob no backup copied, and
#    makes the node the primary of a new term, alone;
#  - the restored node and a new empty one are made a pair with ha_setup(),
#    and a worker finishes the crawl that was cut off;
#  - bad options and impossible targets are refused, saying why.
use strict;
use warnings;
use Digest::SHA qw(sha256_hex);
use File::Path qw(make_path);
use FindBin;
use IPC::Run;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes ();
use CrawlerHA::Test qw(ha_pair ha_conninfo ha_multihost ha_set_peer ha_wait_writable new_node nginx_serve sample_site);
use CrawlerHA::Agent qw(agent_start agent_kill agent_curl agent_pki agent_blob_files);
use CrawlerHA::Backup qw(backup_cli backup_setup_pair);

plan skip_all => 'CRAWLER_HA (the built crawler-ha) is not set' unless $ENV{CRAWLER_HA} && -x $ENV{CRAWLER_HA};
my $worker = $ENV{CRAWLER_WORKER};
plan skip_all => 'CRAWLER_WORKER (the built crawler-worker) is not set' unless $worker && -x $worker;
my ($pgbackrest) = grep { -x "$_/pgbackrest" } split /:/, $ENV{PATH};
plan skip_all => 'pgbackrest is not installed (scripts/install-deps installs it)' unless $pgbackrest;
plan skip_all => 'nginx is not installed' unless -x '/usr/sbin/nginx';

my (@agents, @started);
END { eval { agent_kill($_) } for @agents; eval { $_->kill_kill } for @started; }

my $root = "$FindBin::RealBin/../..";
my $site = PostgreSQL::Test::Utils::tempdir() . '/site';
eval { sample_site($site); 1 } or BAIL_OUT("the sample site: $@");
my $web = nginx_serve($site);
push @started, $web->{harness};
my $base = $web->{base};

# semi_sync: a blob is on both nodes before its row commits, so the
# standby's store holds what its rows need when it takes over.
my ($a, $b) = ha_pair(names => [ 'rs_a', 'rs_b' ], conf => "crawler_ha.replication_mode = 'semi_sync'\n");
my $roles = 'CREATE ROLE opsadmin LOGIN IN ROLE crawler_ha_admin; CREATE ROLE crawler LOGIN IN ROLE crawler_ha_writer';
$a->safe_psql('postgres', $roles);
$b->safe_psql('postgres', "BEGIN READ WRITE; $roles; COMMIT");
my $bk = backup_setup_pair($a, $b);
my $aa = agent_start($a);
my $ab = agent_start($b);
push @agents, $aa, $ab;
my $pki = agent_pki();

sub run_args
{
	my ($n, $agent, @more) = @_;
	return ('backup', 'run', '--node', ha_conninfo($n) . ' user=opsadmin', '--config', $bk->{conf}{ $n->name },
		'--store', $agent->{store}, @more);
}

sub read_file
{
	my ($path) = @_;
	open my $f, '<:raw', $path or return '';
	local $/;
	my $t = <$f>;
	close $f;
	return $t;
}

# image($node, $agent, $sid, $name): new image bytes stored through the
# agent and recorded on the node; returns the sha256.
my $tmp = PostgreSQL::Test::Utils::tempdir();
sub image
{
	my ($n, $agent, $sid, $name) = @_;
	my $bytes = "\x89PNG\r\n\x1a\n$name-" . join('', map { chr(int rand 256) } 1 .. 3000);
	my $sha = sha256_hex($bytes);
	open my $f, '>:raw', "$tmp/$sha.png" or die $!;
	print $f $bytes;
	close $f;
	# An agent learns its node's promotion at its next look (a second):
	# until then it refuses uploads as a standby's.
	my ($code, $body);
	for (1 .. 100)
	{
		($code, $body) = agent_curl($agent, '-T', "$tmp/$sha.png", "/api/blobs/$sha.png");
		last unless $code eq '503';
		Time::HiRes::sleep(0.1);
	}
	die "PUT $sha: $code $body" unless $code =~ /^20[01]$/;
	my $path = substr($sha, 0, 2) . '/' . substr($sha, 2, 2) . "/$sha.png";
	$n->safe_psql('postgres', "SELECT image_record($sid, 'http://restore.test/$name', '$sha', '$path', "
		  . length($bytes) . ", 1, 1, 'png', 'image/png')");
	return $sha;
}

# Every file of a store hashes to its name: { sha256 => 1 }, or dies.
sub verified_store
{
	my ($store) = @_;
	my %ok;
	for my $f (glob("$store/[0-9a-f][0-9a-f]/[0-9a-f][0-9a-f]/*"))
	{
		next unless $f =~ m{/([0-9a-f]{64})\.[a-z0-9]+\z};
		my $want = $1;
		my $got = Digest::SHA->new(256)->addfile($f)->hexdigest;
		die "$f hashes to $got" unless $got eq $want;
		$ok{$want} = 1;
	}
	return \%ok;
}

# A node whose data directory `crawler-ha restore` writes: its own port,
# the old node's settings otherwise.
sub adopt
{
	my ($n) = @_;
	$n->append_conf('postgresql.conf', "port = " . $n->port . "\n");
	return $n;
}

my ($rc, $out, $err);

# --- a crawl through the primary's agent, cut off by killing its worker ---
my @worker_args = ('--storage-agent', '--agent-token-file', $pki->{token_file}, '--agent-ca-file', $pki->{ca},
	'--lease-seconds', '6');
my $crawl = IPC::Run::start([ $worker, 'crawl', '--db', ha_multihost($a, $b) . ' user=crawler', '--seed', "$base/",
		'--max-depth', '30', '--delay-ms', '40', '--per-host', '2', '--spool', PostgreSQL::Test::Utils::tempdir(),
		@worker_args ], '>', \my $cout, '2>', \my $cerr, IPC::Run::timeout(600));
ok($a->poll_query_until('postgres', "SELECT count(*) >= 8 FROM images"), 'the crawl stores images through rs_a\'s agent');
$crawl->signal('KILL');
eval { $crawl->finish };
my $crawl_sid = $a->safe_psql('postgres', 'SELECT min(id) FROM crawl_sessions');
my $left = $a->safe_psql('postgres',
	"SELECT count(*) FROM crawl_frontier WHERE session_id = $crawl_sid AND state IN ('queued', 'leased')");
cmp_ok($left, '>', 0, "its worker killed: the crawl is cut off with $left URLs to go");

# --- backup 1 (full), and its restore test ---
($rc, $out, $err) = backup_cli(run_args($a, $aa, '--type', 'full'));
is($rc, 0, 'a full backup of rs_a') or diag($out . $err);
my ($full1) = $out =~ /backup: full (\d{8}-\d{6}F),/;
my $images1 = $a->safe_psql('postgres', 'SELECT count(*) FROM images');
my $blobs1 = $a->safe_psql('postgres', 'SELECT count(DISTINCT sha256) FROM images');
($rc, $out, $err) = backup_cli('backup', 'test-restore', '--node', ha_conninfo($a) . ' user=opsadmin', '--config',
	$bk->{conf}{rs_a}, '--scratch-dir', $bk->{dir});
is($rc, 0, 'backup test-restore of the newest backup: exit 0') or diag($out . $err);
like($out, qr/restore test of full backup $full1 of stanza rs_a \(to crawler_ha_$full1\):\n  restored by pgBackRest into .*\n  started, recovered to its restore point and promoted .*\n  figures: as recorded\n  blobs: (\d+) referenced \(\d+ bytes\), \1 read back from the repository and hashed: \1 ok\ntest-restore: passed in [\d.]+ s, recorded\n/,
	'... restored, started, figures as recorded, every blob read back and hashed');
is($a->safe_psql('postgres', "SELECT restore_test_ok, restore_test_detail ->> 'figures_equal', "
	  . "restore_test_detail ->> 'blob_count' = blob_count::text FROM ha_backups() WHERE label = '$full1'"),
	't|true|t', '... recorded on the backup\'s row');
like($a->safe_psql('postgres', "SELECT reason FROM ha_events WHERE kind = 'restore' ORDER BY id DESC LIMIT 1"),
	qr/^restore test of full backup $full1 of stanza rs_a: restored, figures and blobs as recorded$/, '... and as a restore event');
my @scratch_left = glob("$bk->{dir}/crawler-ha-restore-test.*");
is(scalar(@scratch_left), 0, '... and the scratch cluster is gone');

# A backup whose recorded figures are not what it restores to fails it.
my $saved = $a->safe_psql('postgres', "SELECT figures FROM ha_backups WHERE label = '$full1'");
$a->safe_psql('postgres', "BEGIN; SET LOCAL session_replication_role = replica; UPDATE ha_backups SET figures = "
	  . "jsonb_set(figures, '{public.images,row_count}', '999999') WHERE label = '$full1'; COMMIT");
($rc, $out, $err) = backup_cli('backup', 'test-restore', '--node', ha_conninfo($a) . ' user=opsadmin', '--config',
	$bk->{conf}{rs_a}, '--scratch-dir', $bk->{dir}, '--label', $full1);
is($rc, 1, 'a backup that does not restore to what it recorded: exit 1');
like($out, qr/figures: DIFFERENT\n.*test-restore: FAILED/s, '... says so');
like($err, qr/the restored data's figures differ from those recorded \(public\.images\)/, '... naming the table that differs');
is($a->safe_psql('postgres', "SELECT restore_test_ok FROM ha_backups WHERE label = '$full1'"), 'f', '... recorded as failed');
like($a->safe_psql('postgres', "SELECT reason FROM ha_events WHERE kind = 'restore' ORDER BY id DESC LIMIT 1"),
	qr/FAILED: the restored data's figures differ/, '... in its event too');
$a->safe_psql('postgres', "UPDATE ha_backups SET figures = '$saved' WHERE label = '$full1'");

# --- T, then rows after it, then backup 2 (incremental) ---
Time::HiRes::sleep(1.2);
my $t = $a->safe_psql('postgres', "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')");
Time::HiRes::sleep(1.2);
my $late_sid = $a->safe_psql('postgres', "SELECT crawl_start(ARRAY['http://after-t.test/'])");
my $sha_after_t = image($a, $aa, $late_sid, 'after-t');
my $images_before_t = $images1;
($rc, $out, $err) = backup_cli(run_args($a, $aa, '--type', 'incr'));
is($rc, 0, 'an incremental backup after T') or diag($out . $err);
like($out, qr/  blobs: \d+ referenced \(\d+ bytes\), \d+ already in the repository, 1 copied/, '... copies the one new blob');
my ($incr1) = $out =~ /backup: incr (\S+),/;

# --- a failover between backups ---
ok($b->poll_query_until('postgres', "SELECT count(*) = " . ($images1 + 1) . " FROM images"), 'rs_b has every row');
ok(defined(eval {
			for (1 .. 200) { return 1 if agent_blob_files($ab)->{$sha_after_t}; Time::HiRes::sleep(0.1); }
			undef;
		}), '... and every blob');
agent_kill($aa);
$a->stop('immediate');
ok(defined ha_wait_writable($b, 60), 'rs_a lost: rs_b is the primary');
my $b_sid = $b->safe_psql('postgres', "SELECT crawl_start(ARRAY['http://on-b.test/'])");
image($b, $ab, $b_sid, 'on-b');
($rc, $out, $err) = backup_cli(run_args($b, $ab, '--type', 'incr'));
is($rc, 0, 'the new primary backs up its own stanza (a full backup: its first)') or diag($out . $err);
like($out, qr/backup: full \d{8}-\d{6}F,/, '... full');
like($out, qr/  blobs: \d+ referenced .*, 1 copied/, '... copying only its one new blob');
my $sha_late = image($b, $ab, $b_sid, 'late');
my $images_latest = $b->safe_psql('postgres', 'SELECT count(*) FROM images');
# A moment after the failover, and a commit after it (recovery stops at the
# first commit past its target: without one it would run out of WAL first).
Time::HiRes::sleep(1.2);
my $t3 = $b->safe_psql('postgres', "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')");
Time::HiRes::sleep(1.2);
$b->safe_psql('postgres', "SELECT crawl_start(ARRAY['http://after-t3.test/'])");
my $seg = $b->safe_psql('postgres', 'SELECT pg_walfile_name(pg_current_wal_lsn())');
$b->safe_psql('postgres', 'SELECT pg_switch_wal()');
ok($b->poll_query_until('postgres', "SELECT last_archived_wal >= '$seg' FROM pg_stat_archiver"),
	'an image after the last backup, its WAL archived');

# --- both nodes lost: their data directories and stores deleted ---
agent_kill($ab);
$b->stop('immediate');
File::Path::remove_tree($a->data_dir, $b->data_dir, $aa->{store}, $ab->{store});
ok(!-e $a->data_dir && !-e $b->data_dir && !-e $aa->{store} && !-e $ab->{store},
	'both nodes lost: data directories and blob stores deleted');

# --- bad options, impossible targets ---
my $conf = $bk->{conf}{rs_a};
my $nowhere = PostgreSQL::Test::Utils::tempdir();
for my $case (
	[ [], 2, qr/--target is required/ ],
	[ [ '--target', 'relative' ], 2, qr/--target must be an absolute path/ ],
	[ [ '--target', "$nowhere/x" ], 2, qr/give --store \(where the blobs go\) or --no-blobs/ ],
	[ [ '--target', "$nowhere/x", '--no-blobs', '--store', "$nowhere/s" ], 2, qr/give --store .* or --no-blobs/ ],
	[ [ '--target', "$nowhere/x", '--no-blobs', '--latest', '--time', '2026-01-01 00:00:00' ], 2, qr/give one of --latest, --time and --set/ ],
	[ [ '--target', "$nowhere/x", '--no-blobs', '--time', 'yesterday' ], 2, qr/--time must be "YYYY-MM-DD HH:MM:SS/ ],
	[ [ '--target', "$nowhere/x", '--no-blobs', '--time', "2026-01-01 00:00:00'; DROP TABLE images" ], 2, qr/--time must be/ ],
	[ [ '--target', "$nowhere/x y", '--no-blobs' ], 2, qr/--target must be an absolute path/ ],
	[ [ '--target', "$nowhere/x", '--no-blobs', '--stanza', 'a;b' ], 2, qr/--stanza must be/ ],
	[ [ '--target', "$nowhere/x", '--no-blobs', '--dbname', "x' host=evil" ], 2, qr/--dbname must be/ ],
	[ [ '--target', "$nowhere/x", '--no-blobs', '--timeout', '0' ], 2, qr/--timeout must be/ ],
	[ [ '--target', "$nowhere/x", '--no-blobs', '--bogus' ], 2, qr/unrecognised option '--bogus'|unrecognized option/ ],
	[ [ '--target', $tmp, '--no-blobs' ], 2, qr/exists and is not an empty directory: nothing is restored over data/ ],
	[ [ '--target', "$nowhere/x", '--no-blobs', '--config', $conf, '--time', '2000-01-01 00:00:00' ], 1,
		qr/no stanza of the repository holds a backup that ended before 2000-01-01 00:00:00\+00/ ],
	[ [ '--target', "$nowhere/x", '--no-blobs', '--config', $conf, '--stanza', 'nosuch' ], 1, qr/the repository has no stanza nosuch/ ],
	[ [ '--target', "$nowhere/x", '--no-blobs', '--config', $conf, '--set', '20000101-000000F' ], 1,
		qr/no stanza of the repository holds a usable backup 20000101-000000F/ ])
{
	my ($args, $want_rc, $want) = @$case;
	($rc, $out, $err) = backup_cli('restore', @$args);
	is($rc, $want_rc, "restore @$args: exit $want_rc");
	like($err, $want, '... saying why');
}
ok(!-e "$nowhere/x", 'none of them restored anything');
($rc, $out, $err) = backup_cli('restore', '--help');
like($out, qr/Usage: crawler-ha restore --target DIR/, 'restore --help');

# --- restore to T: the old primary's stanza, rows before T, their blobs ---
my $r1 = PostgreSQL::Test::Cluster->new('rs_t');
my $store1 = PostgreSQL::Test::Utils::tempdir() . '/store';
($rc, $out, $err) = backup_cli('restore', '--target', $r1->data_dir, '--time', $t, '--config', $conf, '--store', $store1);
is($rc, 0, "restore --time '$t': exit 0") or diag($out . $err);
like($out, qr/restore of stanza rs_a, backup full $full1 \(node rs_a, ended [^)]+\): the newest backup before \S+ \S+ of the stanza made in the highest term \(term 1\)\n  to \Q$t\E\+00, into /,
	'... from rs_a\'s full backup, the newest that ended before T');
like($out, qr/  blobs: $blobs1 referenced by the rows, $blobs1 restored \([^)]+, each hashed\), 0 already in \S+, 0 not in the repository, 0 failed/,
	'... every blob its rows reference restored and hashed');
like($out, qr/  node: the primary of term 2, alone/, '... made the primary of a new term');
adopt($r1)->start;
is($r1->safe_psql('postgres', 'SELECT count(*) FROM images'), $images_before_t, '... holding the images before T');
is($r1->safe_psql('postgres', "SELECT count(*) FROM crawl_sessions WHERE id = $late_sid"), '0', '... and not the session after T');
my $files1 = verified_store($store1);
is(scalar(keys %$files1), $blobs1, '... every blob in the store, named by its hash');
is($r1->safe_psql('postgres', "SELECT count(*) FROM images WHERE sha256 NOT IN ('" . join("','", keys %$files1) . "')"),
	'0', '... one for each row');
$r1->stop;

# A point between the backups: the blob of a row written after T was copied
# by the later backup only; a restore to a moment after the row finds it.
my $r2 = PostgreSQL::Test::Cluster->new('rs_t2');
my $store2 = PostgreSQL::Test::Utils::tempdir() . '/store';
($rc, $out, $err) = backup_cli('restore', '--target', $r2->data_dir, '--set', $incr1, '--config', $conf, '--store', $store2);
is($rc, 0, 'restore --set of the incremental backup (to its restore point): exit 0') or diag($out . $err);
like($out, qr/  blobs: ${\($blobs1 + 1)} referenced by the rows, ${\($blobs1 + 1)} restored/, '... with the blob the incremental copied');
ok(verified_store($store2)->{$sha_after_t}, '... the image after T among them, verified');

# A time after the failover: the new primary's stanza.
my $r3 = PostgreSQL::Test::Cluster->new('rs_t3');
($rc, $out, $err) = backup_cli('restore', '--target', $r3->data_dir, '--time', $t3, '--config', $conf, '--no-blobs');
is($rc, 0, "restore --time '$t3' (after the failover) --no-blobs: exit 0") or diag($out . $err);
like($out, qr/restore of stanza rs_b, backup full \S+ \(node rs_b, [^)]+\): the newest backup before \S+ \S+ of the stanza made in the highest term \(term 2\)\n/,
	'... from the new primary\'s stanza');
unlike($out, qr/  blobs:/, '... and no blob');
adopt($r3)->start;
is($r3->safe_psql('postgres', 'SELECT count(*) FROM images'), $images_latest, '... holding every image written before that time');
is($r3->safe_psql('postgres', "SELECT count(*) FROM crawl_sessions WHERE seeds[1] = 'http://after-t3.test/'"), '0',
	'... and not the session after it');
$r3->stop;

# --- restore the latest: the new primary's stanza, its whole archive ---
my $y = PostgreSQL::Test::Cluster->new('rs_y');
my $store_y = PostgreSQL::Test::Utils::tempdir() . '/store';
($rc, $out, $err) = backup_cli('restore', '--target', $y->data_dir, '--latest', '--config', $conf, '--store', $store_y);
is($rc, 1, 'restore --latest: exit 1, a blob is missing') or diag($out . $err);
like($out, qr/restore of stanza rs_b, backup full \S+ \(node rs_b, ended [^)]+\): the newest backup of the stanza made in the highest term \(term 2\)\n  to the end of the archived WAL/,
	'... from the stanza of the highest term, rs_b\'s');
like($err, qr/blob $sha_late is not in the repository/, '... naming the blob no backup copied');
like($err, qr/1 blob\(s\) not in the repository: rows written after the last backup's blob copy name them/, '... and why');
like($out, qr/  node: the primary of term 3, alone \(the old pair's subscription and slots removed\)/, '... the primary of term 3');
adopt($y)->start;
is($y->safe_psql('postgres', 'SELECT count(*) FROM images'), $images_latest, '... holding every image, the one after the last backup too');
is($y->safe_psql('postgres', "SELECT role || ' ' || term || ' ' || fenced FROM ha_state"), 'primary 3 false', '... primary, term 3, not fenced');
is($y->safe_psql('postgres', "SELECT count(*) FROM pg_subscription"), '0', '... no subscription to the lost pair');
like($y->safe_psql('postgres', "SELECT reason FROM ha_events WHERE kind = 'restore' ORDER BY id DESC LIMIT 1"),
	qr/^restored from backup \S+ of stanza rs_b to the end of the archived WAL: primary of term 3, alone until a standby joins$/,
	'... a restore event says so');
is($y->safe_psql('postgres', "SELECT reason FROM ha_terms WHERE term = 3"), 'restore', '... and the term\'s reason');
is($y->safe_psql('postgres', 'SHOW default_transaction_read_only'), 'off', '... and it takes writes');

# --- a pair again: a new empty node joins with ha_setup, the crawl finishes ---
my $z = new_node('rs_z', node_id => 1, extra_conf => "crawler_ha.health_check_interval = '1s'\n");
$z->safe_psql('postgres', 'CREATE ROLE crawler LOGIN IN ROLE crawler_ha_writer');
ha_set_peer($y, $z);
ha_set_peer($z, $y);
is($z->safe_psql('postgres', "SELECT ha_setup('standby')"), 'standby', 'the new node joins the restored one as its standby');
ok($z->poll_query_until('postgres', "SELECT count(*) = $images_latest FROM images"), '... and receives every row');
my $ay = agent_start($y, store => $store_y);
my $az = agent_start($z);
push @agents, $ay, $az;
my $run_log = "$PostgreSQL::Test::Utils::log_path/512_worker_run.log";
my $run = IPC::Run::start([ $worker, 'run', '--db', ha_multihost($y, $z) . ' user=crawler',
		'--spool', PostgreSQL::Test::Utils::tempdir(), @worker_args ],
	'>', $run_log, '2>&1', IPC::Run::timeout(600));
push @started, $run;
ok($y->poll_query_until('postgres', "SELECT status = 'finished' FROM crawl_sessions WHERE id = $crawl_sid"),
	'a worker on the rebuilt pair finishes the crawl that was cut off') or diag(read_file($run_log));
$run->signal('TERM');
eval { $run->finish };
open my $fx, '<', "$site/EXPECTED-IMAGES" or die $!;
my @expected = sort grep { length && !/^#/ } map { chomp; $_ } <$fx>;
close $fx;
my @found = sort split /\n/, $y->safe_psql('postgres',
	"SELECT substr(url, length('$base') + 1) FROM crawl_frontier WHERE session_id = $crawl_sid AND kind = 'image'");
is_deeply(\@found, \@expected, '... every image of the site found, before and after the disaster');
is($y->safe_psql('postgres', "SELECT count(*) FROM images WHERE session_id = $crawl_sid"), scalar(@expected) - 1,
	'... every image but the HTML page named .jpg recorded');
ok($z->poll_query_until('postgres', "SELECT count(*) = " . (scalar(@expected) - 1) . " FROM images WHERE session_id = $crawl_sid"),
	'... on the new standby too');
my %rows = map { $_ => 1 } split /\n/, $y->safe_psql('postgres', "SELECT sha256 FROM images WHERE session_id = $crawl_sid");
my $store_files = verified_store($store_y);
is(scalar(grep { !$store_files->{$_} } keys %rows), 0, '... each with its blob in the restored node\'s store, verified');

done_testing();
