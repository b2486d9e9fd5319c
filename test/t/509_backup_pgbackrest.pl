# crawler-ha backup with pgBackRest on a real pair: setup on each node (each
# its own stanza, one repository, the restart archive_mode needs), a full
# backup on the primary, rows written, an incremental one, the standby
# refused, the list of both nodes with figures that a restore to the
# recorded restore point reproduces, pgBackRest's info agreeing; the
# repository unreadable without the passphrase, which is nowhere else;
# retention keeping two full backups; a damaged repository file reported
# by verify; and every bad input refused with a clear message.
use strict;
use warnings;
use File::Find;
use File::Path qw(make_path);
use IPC::Run;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes ();
use CrawlerHA::Test qw(ha_pair ha_wait_writable ha_conninfo new_node);

plan skip_all => 'CRAWLER_HA (the built crawler-ha) is not set' unless $ENV{CRAWLER_HA} && -x $ENV{CRAWLER_HA};
my ($pgbackrest) = grep { -x "$_/pgbackrest" } split /:/, $ENV{PATH};
plan skip_all => 'pgbackrest is not installed (scripts/install-deps installs it)' unless $pgbackrest;
$pgbackrest .= '/pgbackrest';

my $restored_dir;
END { system('pg_ctl', '-D', $restored_dir, '-m', 'immediate', 'stop') if $restored_dir && -f "$restored_dir/postmaster.pid"; }

my ($a, $b) = ha_pair(names => [ 'bk_a', 'bk_b' ]);
my $roles = 'CREATE ROLE ops LOGIN IN ROLE crawler_ha_reader; CREATE ROLE opsadmin LOGIN IN ROLE crawler_ha_admin';
$a->safe_psql('postgres', $roles);
$b->safe_psql('postgres', "BEGIN READ WRITE; $roles; COMMIT");

my $dir = PostgreSQL::Test::Utils::tempdir();
my $repo = "$dir/repo";
my $passphrase = join '', map { ('a' .. 'z', 'A' .. 'Z', 0 .. 9)[ int rand 62 ] } 1 .. 48;
my $pass = write_file("$dir/pass", "$passphrase\n", 0600);

# write_file($path, $text, $mode): the path.
sub write_file
{
	my ($path, $text, $mode) = @_;
	open my $f, '>', $path or die "$path: $!";
	print $f $text;
	close $f;
	chmod $mode, $path;
	return $path;
}

sub read_file
{
	my ($path) = @_;
	open my $f, '<', $path or return '';
	local $/;
	my $t = <$f>;
	close $f;
	return $t;
}

my %outputs;    # everything the commands printed, searched for the passphrase at the end

# cli(@args): (exit status, stdout, stderr) of crawler-ha.
sub cli
{
	my ($o, $e) = ('', '');
	IPC::Run::run([ $ENV{CRAWLER_HA}, @_ ], '<', \undef, '>', \$o, '2>', \$e, IPC::Run::timeout(600));
	$outputs{"@_"} .= $o . $e;
	return ($? >> 8, $o, $e);
}

# Each node's own configuration directory (each is "its machine").
sub conf { my ($n) = @_; return "$dir/" . $n->name . '/pgbackrest.conf'; }
sub node_dir { my ($n) = @_; return "$dir/" . $n->name; }

sub setup_args
{
	my ($n, %o) = @_;
	my $d = node_dir($n);
	return ('backup', 'setup', '--node', $o{node} // ha_conninfo($n), '--pgdata', $o{pgdata} // $n->data_dir,
		'--repo', $repo, '--passphrase-file', $o{pass} // $pass, '--config', $o{config} // conf($n),
		'--log-path', "$d/log", '--lock-path', "$d/lock", '--spool-path', "$d/spool");
}

sub run_args
{
	my ($n, @more) = @_;
	return ('backup', 'run', '--node', ha_conninfo($n) . ' user=opsadmin', '--config', conf($n), @more);
}

# pgbackrest($node, @args): (exit status, stdout, stderr) of pgbackrest with
# the node's configuration.
sub pgbackrest
{
	my ($n, @args) = @_;
	my $conf = conf($n);
	(my $inc = $conf) =~ s{/[^/]+$}{/conf.d};
	my ($o, $e) = ('', '');
	IPC::Run::run([ $pgbackrest, "--config=$conf", "--config-include-path=$inc", '--stanza=' . $n->name, @args ],
		'<', \undef, '>', \$o, '2>', \$e, IPC::Run::timeout(600));
	return ($? >> 8, $o, $e);
}

sub info
{
	my ($n) = @_;
	my ($rc, $o) = pgbackrest($n, 'info', '--output=json');
	my $doc = eval { decode_json($o) } or return undef;
	return $doc->[0];
}

sub sessions { my ($n) = @_; return $n->safe_psql('postgres', 'SELECT count(*) FROM crawl_sessions'); }

my ($rc, $out, $err);

# --- bad input, before anything is set up ---
($rc, $out, $err) = cli(setup_args($a, pass => "$dir/missing"));
is($rc, 1, 'setup with a missing passphrase file: exit 1');
like($err, qr/passphrase file \S+missing: No such file/, '... saying so: ' . $err);
write_file("$dir/open", "$passphrase\n", 0644);
($rc, $out, $err) = cli(setup_args($a, pass => "$dir/open"));
is($rc, 1, 'setup with a world-readable passphrase file: exit 1');
like($err, qr/open to group or others \(mode 644\): chmod 600 it/, '... saying so: ' . $err);
unlike($err, qr/\Q$passphrase\E/, '... without quoting it');
write_file("$dir/empty", "\n", 0600);
($rc, $out, $err) = cli(setup_args($a, pass => "$dir/empty"));
is($rc . $err, "1crawler-ha backup setup: passphrase file $dir/empty is empty\n", 'an empty passphrase file: exit 1, saying so');
write_file("$dir/short", "short\n", 0600);
($rc, $out, $err) = cli(setup_args($a, pass => "$dir/short"));
like($err, qr/20 to 1024 characters/, 'a short passphrase: refused: ' . $err);
SKIP:
{
	skip 'root reads any file', 2 if $> == 0;
	write_file("$dir/unreadable", "$passphrase\n", 0000);
	($rc, $out, $err) = cli(setup_args($a, pass => "$dir/unreadable"));
	is($rc, 1, 'an unreadable passphrase file: exit 1');
	like($err, qr/passphrase file \S+unreadable cannot be read/, '... saying so: ' . $err);
}
($rc, $out, $err) = cli('backup', 'setup', '--node', ha_conninfo($a), '--repo', $repo, '--passphrase-file', $pass);
is($rc, 2, 'setup without --pgdata: exit 2');
like($err, qr/--pgdata is required/, '... saying so');
($rc, $out, $err) = cli(setup_args($a, config => "$dir/my conf/pgbackrest.conf"));
is($rc, 2, 'a path with a space: exit 2');
like($err, qr/--config must be an absolute path of letters, digits/, '... saying why: ' . $err);
($rc, $out, $err) = cli(setup_args($a, node => ha_conninfo($a) . ' user=opsadmin'));
is($rc, 1, 'setup as a role that is not a superuser: exit 1');
like($err, qr/the role opsadmin is not a superuser: setup sets archive_mode and archive_command with ALTER SYSTEM/,
	'... saying it needs one and why: ' . $err);
($rc, $out, $err) = cli(setup_args($a, pgdata => $b->data_dir));
is($rc, 1, 'setup with the other node\'s data directory: exit 1');
like($err, qr/is not the data directory of the server --node reaches/, '... saying so');
($rc, $out, $err) = cli(setup_args($a, node => 'host=' . $a->host . ',' . $b->host . ' port=' . $a->port . ',' . $b->port));
is($rc, 2, 'setup with a multi-host --node: exit 2');
like($err, qr/--node must name one server/, '... saying so');
ok(!-e conf($a), 'none of that wrote a configuration');
($rc, $out, $err) = cli('backup', 'restore');
is($rc, 2, 'backup restore (restore is a command of its own): exit 2');
like($err, qr/unknown subcommand "restore": setup, run, list, expire-blobs, verify-blobs, test-restore or schedule/, '... naming the ones there are');
($rc, $out, $err) = cli(run_args($a, '--type', 'weekly'));
is($rc, 2, 'run --type weekly: exit 2');
like($err, qr/--type must be full, diff or incr/, '... saying so');
($rc, $out, $err) = cli(run_args($a));
is($rc, 1, 'run before setup: exit 1');
like($err, qr/WAL archiving is off on this node.*SQLSTATE 55000/, '... the extension refuses it: ' . $err);

# --- setup: a restart to turn archiving on ---
for my $n ($a, $b)
{
	($rc, $out, $err) = cli(setup_args($n));
	is($rc, 3, 'setup on ' . $n->name . ': exit 3, restart needed') or diag($out . $err);
	like($out, qr/configuration \S+: written\n.*passphrase \S+crawler_ha-cipher.conf \(mode 600\): written\n.*archive_command: set to \Q$pgbackrest\E --config=/s,
		'... it wrote the configuration, the passphrase file and archive_command');
	like($out, qr/archive_mode: was off, set to on: takes effect at the next restart/, '... and set archive_mode');
	like($err, qr/restart PostgreSQL on ${\ $n->name } now/, '... and asks for the restart');
	is(sprintf('%o', (stat(node_dir($n) . '/conf.d/crawler_ha-cipher.conf'))[2] & 07777), '600', '... the passphrase file is mode 600');
	unlike(read_file(conf($n)), qr/\Q$passphrase\E/, '... and not in the configuration');
}
($rc, $out, $err) = cli(setup_args($a));
is($rc, 3, 'setup again before the restart: exit 3');
like($out, qr/configuration \S+: unchanged.*passphrase \S+ \(mode 600\): unchanged.*archive_command: unchanged.*archive_mode: on since ALTER SYSTEM, waiting for the restart/s,
	'... nothing changed, still waiting');
# The restart as an operator does it: no failover meanwhile.
$_->safe_psql('postgres', 'SELECT ha_pause()') for ($a, $b);
$b->restart;
$a->restart;
# A node's HA worker starts a moment after the server: ha_resume() asks it
# (55000 until it runs), so it is asked until it answers.
for my $n ($a, $b)
{
	my $resumed = 0;
	for (1 .. 300)
	{
		my ($rc) = $n->psql('postgres', 'SELECT ha_resume()');
		$resumed = 1, last if $rc == 0;
		Time::HiRes::sleep(0.2);
	}
	die $n->name . ': ha_resume() still refused after 60 s' unless $resumed;
}
ok(defined ha_wait_writable($a), 'bk_a writes again after its restart');
ok($b->poll_query_until('postgres', "SELECT ok FROM ha_endpoint_check('replica')"), 'bk_b is its standby again');
for my $n ($a, $b)
{
	($rc, $out, $err) = cli(setup_args($n));
	is($rc, 0, 'setup on ' . $n->name . ' after the restart: exit 0') or diag($out . $err);
	like($out, qr/archive_mode: on\n  stanza-create: created the stanza ${\ $n->name } in \Q$repo\E\n  check: WAL archiving reaches the repository\nbackup setup: done\n/,
		'... the stanza created and checked');
}
my $conf_before = read_file(conf($a));
($rc, $out, $err) = cli(setup_args($a));
is($rc, 0, 'setup once more: exit 0');
like($out, qr/stanza-create: the stanza exists in the repository\n.*\nbackup setup: nothing changed; the stanza is checked\n$/,
	'... nothing changed, and it says so');
is(read_file(conf($a)), $conf_before, '... the configuration is as it was');
is($a->safe_psql('postgres', 'SHOW archive_mode'), 'on', 'archive_mode is on');

write_file("$dir/other", "another-passphrase-0123456789abcdef\n", 0600);
($rc, $out, $err) = cli(setup_args($a, pass => "$dir/other"));
is($rc, 1, 'setup with another passphrase for an existing repository: exit 1');
like($err, qr/holds another passphrase: the repository's files are encrypted with it/, '... refused: ' . $err);
write_file("$dir/foreign.conf", "[global]\nrepo1-path=/somewhere\n", 0600);
($rc, $out, $err) = cli(setup_args($a, config => "$dir/foreign.conf"));
is($rc, 1, 'setup over a configuration someone else wrote: exit 1');
like($err, qr/foreign.conf exists and was not written by crawler-ha backup setup/, '... refused');
is(read_file("$dir/foreign.conf"), "[global]\nrepo1-path=/somewhere\n", '... and left alone');

# --- backups on the primary, the standby refused ---
$a->safe_psql('postgres', "SELECT crawl_start(ARRAY['http://before.test/$_']) FROM generate_series(1, 3)");
my $rows_full = sessions($a);
($rc, $out, $err) = cli(run_args($a, '--type', 'full'));
is($rc, 0, 'a full backup on the primary: exit 0') or diag($out . $err);
like($out, qr/backup: full \d{8}-\d{6}F, .*\n  verify: ok\n  recorded with the figures at its restore point crawler_ha_\d{8}-\d{6}F \(\S+\)\n  blobs: 0 referenced \(0 bytes\), .*\n(?:  blob .*\n)+  check: the restore point's WAL is archived\nbackup run: done\n/,
	'... verified, recorded (no image: no blob), its restore point archived');
my $marker = 'http://secret-marker-' . int(rand(1e9)) . '.test/';
$a->safe_psql('postgres', "SELECT crawl_start(ARRAY['$marker' || i]) FROM generate_series(1, 5) i");
my $rows_incr = sessions($a);
($rc, $out, $err) = cli(run_args($a, '--type', 'incr'));
is($rc, 0, 'an incremental backup: exit 0') or diag($out . $err);
like($out, qr/backup: incr \d{8}-\d{6}F_\d{8}-\d{6}I, /, '... an incremental one');
$a->safe_psql('postgres', "SELECT crawl_start(ARRAY['http://after.test/1'])");

($rc, $out, $err) = cli(run_args($b));
is($rc, 3, 'backup run on the standby: exit 3 (refused)');
like($err, qr/refused: this node may not make a backup now: crawler_ha node "bk_b" does not accept writes: it is a standby; the primary is "bk_a" \(SQLSTATE 25006\)/,
	'... saying why: ' . $err);
is(scalar(@{ info($b)->{backup} }), 0, '... and the standby\'s stanza holds no backup');
($rc, $out, $err) = cli('backup', 'run', '--node', ha_conninfo($a) . ' user=ops', '--config', conf($a));
is($rc, 1, 'backup run as a reader: exit 1');
like($err, qr/permission denied for function ha_backup_begin \(SQLSTATE 42501\)/, '... permission denied');
($rc, $out, $err) = cli('backup', 'run', '--node', ha_conninfo($a) . ' user=opsadmin', '--config', conf($b), '--stanza', 'bk_b');
is($rc, 1, 'backup run with the other node\'s stanza: exit 1');
like($err, qr/the stanza bk_b is the cluster with system identifier \d+, but --node reaches the cluster \d+/, '... refused: ' . $err);
($rc, $out, $err) = cli('backup', 'run', '--node', ha_conninfo($a) . ' user=opsadmin', '--config', "$dir/nowhere/pgbackrest.conf");
is($rc, 1, 'backup run with a configuration that does not exist: exit 1');
like($err, qr/pgbackrest info failed: .*nowhere/, '... pgBackRest\'s reason: ' . $err);
is($a->safe_psql('postgres', "SELECT detail ->> 'ok' || ' ' || (detail ->> 'step') FROM ha_events WHERE kind = 'backup' ORDER BY id DESC LIMIT 1"),
	'false info', '... recorded as a failed backup event (step info) on the node');

# --- the list, its figures, and what pgBackRest says ---
($rc, $out, $err) = cli('backup', 'list', '--db', ha_conninfo($a) . ' user=ops', '--db', ha_conninfo($b) . ' user=ops', '--json');
is($rc, 0, 'backup list of both nodes: exit 0') or diag($err);
my $doc = decode_json($out);
my %by_node = map { ($_->{node} // '') => $_ } @{ $doc->{nodes} };
is(scalar(@{ $by_node{bk_b}{backups} }), 0, 'bk_b made no backup');
my @bk = @{ $by_node{bk_a}{backups} };
is_deeply([ map { $_->{type} } @bk ], [ 'full', 'incr' ], 'bk_a: the full backup and the incremental one, oldest first');
is($bk[1]{prior}, $bk[0]{label}, '... the incremental one builds on the full one');
is($bk[0]{figures}{'public.crawl_sessions'}{row_count}, $rows_full, '... the full one\'s figures: the rows it holds');
is($bk[1]{figures}{'public.crawl_sessions'}{row_count}, $rows_incr, '... the incremental one\'s: those written since too');
ok(!grep({ !$_->{verify_ok} || defined $_->{expired_at} } @bk), '... both verified, neither expired');
my $pi = info($a);
my %in_info = map { $_->{label} => $_ } @{ $pi->{backup} };
for my $x (@bk)
{
	my $p = $in_info{ $x->{label} };
	ok($p, "pgbackrest info lists $x->{label}") or next;
	is_deeply([ $x->{type}, $x->{start_lsn}, $x->{stop_lsn}, $x->{wal_start}, $x->{wal_stop}, $x->{size_bytes}, $x->{repo_size_bytes} ],
		[ $p->{type}, $p->{lsn}{start}, $p->{lsn}{stop}, $p->{archive}{start}, $p->{archive}{stop}, $p->{info}{size},
		  $p->{info}{repository}{size} ], '... with the same type, LSNs, WAL and sizes');
}
($rc, $out, $err) = cli('backup', 'list', '--db', ha_conninfo($a) . ' user=ops');
like($out, qr/^bk_a\s+bk_a\s+$bk[1]{label}\s+incr\s+.*\sok\s+\S+\s+kept\s+crawl_frontier=\d+ crawl_hosts=\d+ crawl_session_counts=\d+ crawl_sessions=$rows_incr images=0$/m,
	'the text list: a line per backup with its figures');
($rc, $out, $err) = cli('backup', 'list', '--db', 'host=' . $b->host . ' port=1 dbname=postgres', '--connect-timeout', '1');
is($rc, 1, 'backup list with no node answering: exit 1');
like($err, qr/does not answer/, '... saying so');

# The figures are those of the restore point: a restore to it holds exactly
# them, and not the row written after the backup.
$restored_dir = "$dir/restored";
my ($prc, $pout, $perr) = pgbackrest($a, "--pg1-path=$restored_dir", "--set=$bk[1]{label}", '--type=name',
	"--target=$bk[1]{restore_point}", '--target-action=promote', 'restore');
is($prc, 0, 'pgbackrest restores the incremental backup to its restore point') or diag($perr);
my $rport = PostgreSQL::Test::Cluster::get_free_port();
open my $auto, '>>', "$restored_dir/postgresql.auto.conf" or die $!;
print $auto "port = $rport\narchive_mode = off\nshared_preload_libraries = ''\n";
close $auto;
system('pg_ctl', '-w', '-t', '120', '-D', $restored_dir, '-l', "$dir/restored.log", 'start');
# Read-only connections come before recovery has reached its target: wait
# for the promotion that follows it.
for (1 .. 600)
{
	last if `psql -XAtq -h ${\ $a->host } -p $rport -d postgres -c "SELECT pg_is_in_recovery()"` eq "f\n";
	select undef, undef, undef, 0.1;
}
my $restored_fig = `psql -XAtq -h ${\ $a->host } -p $rport -d postgres -c "SELECT ha_backup_figures()"`;
is_deeply(eval { decode_json($restored_fig) }, $bk[1]{figures}, '... and holds exactly the recorded figures')
  or diag(read_file("$dir/restored.log"));
is(`psql -XAtq -h ${\ $a->host } -p $rport -d postgres -c "SELECT count(*) FROM crawl_sessions WHERE seeds[1] = 'http://after.test/1'"`,
	"0\n", '... without the row written after the backup');
system('pg_ctl', '-D', $restored_dir, '-m', 'fast', 'stop');

# --- encryption: unreadable without the passphrase, which is nowhere else ---
my (@files, $plain, $with_marker);
# crawler_ha/ holds the blobs' objects, of a format of their own
# (t/510_backup_blobs.pl checks them), not pgBackRest's files.
find(sub { push @files, $File::Find::name if -f $_ && $File::Find::name !~ m{^\Q$repo\E/crawler_ha/} }, $repo);
for my $f (@files)
{
	open my $fh, '<:raw', $f or die $!;
	read $fh, my $head, 8;
	my $all = do { local $/; $head . <$fh> };
	close $fh;
	$plain .= "$f\n" if $head ne 'Salted__';
	$with_marker .= "$f\n" if index($all, 'secret-marker') >= 0;
}
ok(@files > 20, 'the repository holds ' . scalar(@files) . ' files');
is($plain // '', '', '... every one of them encrypted (OpenSSL\'s "Salted__" header)');
is($with_marker // '', '', '... and none holds a row value in clear');
my $wrong = "$dir/wrong";
make_path("$wrong/conf.d");
write_file("$wrong/pgbackrest.conf", read_file(conf($a)), 0600);
write_file("$wrong/conf.d/crawler_ha-cipher.conf", "[global]\nrepo1-cipher-pass=not-the-passphrase-0123456789\n", 0600);
my ($wrc, $wout) = (0, '');
IPC::Run::run([ $pgbackrest, "--config=$wrong/pgbackrest.conf", "--config-include-path=$wrong/conf.d", '--stanza=bk_a',
	'info', '--output=json' ], '>', \$wout, '2>', \my $werr);
# (its message quotes the garbage a wrong key decrypts, unescaped: control
# characters go, the rest is read as bytes)
(my $wclean = $wout) =~ s/[\x00-\x1f]/ /g;
my $winfo = eval { JSON::PP->new->decode($wclean)->[0] };
isnt($winfo->{status}{code} // 0, 0, 'pgbackrest with a wrong passphrase cannot read the repository: ' . ($winfo->{status}{message} // ''));
ok(!@{ $winfo->{backup} // [] }, '... and lists no backup');
($rc, $out, $err) = cli('backup', 'run', '--node', ha_conninfo($a) . ' user=opsadmin', '--config', "$wrong/pgbackrest.conf");
is($rc, 1, 'backup run with a wrong passphrase: exit 1');
like($err, qr/the stanza bk_a is not ready: other: .*unable to load info file.*may be another passphrase's/,
	'... the stanza cannot be read, pgBackRest\'s reason given: ' . $err);

# --- retention: two full backups kept ---
for (1 .. 2)
{
	($rc, $out, $err) = cli(run_args($a, '--type', 'full'));
	is($rc, 0, "full backup $_ more: exit 0") or diag($out . $err);
}
$pi = info($a);
my @full_kept = grep { $_->{type} eq 'full' } @{ $pi->{backup} };
is(scalar(@full_kept), 2, 'pgBackRest keeps two full backups');
ok(!grep({ $_->{label} eq $bk[0]{label} || $_->{label} eq $bk[1]{label} } @{ $pi->{backup} }),
	'... the first full one and its incremental one expired');
ok($pi->{archive}[0]{min} gt $bk[0]{wal_start}, '... with the WAL only they needed');
($rc, $out) = cli('backup', 'list', '--db', ha_conninfo($a) . ' user=ops', '--json');
my @now = @{ decode_json($out)->{nodes}[0]{backups} };
is_deeply([ map { defined $_->{expired_at} ? 'expired' : 'kept' } @now ], [ 'expired', 'expired', 'kept', 'kept' ],
	'ha_backups() marks the expired ones, keeps the rest');
like($a->safe_psql('postgres', "SELECT detail::text FROM ha_events WHERE kind = 'backup' ORDER BY id DESC LIMIT 1"),
	qr/"expired": \["\Q$bk[0]{label}\E", "\Q$bk[1]{label}\E"\]/, '... and the backup event names them');

# --- the passphrase is nowhere but in its two files ---
my @leaks;
find(
	sub {
		return unless -f $_ && -s _ < 50_000_000;
		return if $File::Find::name eq $pass || $File::Find::name =~ m{/conf\.d/crawler_ha-cipher\.conf$} || $File::Find::name =~ m{^\Q$dir\E/(open|unreadable)$};
		push @leaks, $File::Find::name if index(read_file($File::Find::name), $passphrase) >= 0;
	},
	$dir, $a->data_dir, $b->data_dir, $PostgreSQL::Test::Utils::log_path);
like(read_file(node_dir($a) . '/log/bk_a-backup.log'), qr/--repo1-cipher-pass=<redacted>/,
	'pgBackRest\'s log of the backups (in the log directory setup made) shows the passphrase redacted');
is_deeply(\@leaks, [], 'no file holds the passphrase: not the repository, pgBackRest\'s logs, the data directories or the server logs');
ok(!grep({ index($_, $passphrase) >= 0 } values %outputs), '... nor anything crawler-ha printed');
is($_->safe_psql('postgres', "SELECT count(*) FROM ha_events WHERE strpos(reason || detail::text, '$passphrase') > 0"), '0',
	'... nor an HA event on ' . $_->name) for ($a, $b);
unlike($a->safe_psql('postgres', 'SHOW archive_command'), qr/\Q$passphrase\E/, '... nor archive_command');

# --- another archiver is not taken over ---
my $c = new_node('bk_c', extra_conf => "archive_mode = on\narchive_command = '/bin/true'\n");
($rc, $out, $err) = cli(setup_args($c));
is($rc, 1, 'setup where archive_command is someone else\'s: exit 1');
like($err, qr{archive_command is already set \(/bin/true\): another archiver\?}, '... refused: ' . $err);
$c->stop;

# --- a backup pgBackRest cannot write ---
SKIP:
{
	skip 'root writes into any directory', 4 if $> == 0;
	chmod 0500, "$repo/backup/bk_a" or die $!;
	($rc, $out, $err) = cli(run_args($a, '--type', 'incr'));
	chmod 0750, "$repo/backup/bk_a";
	is($rc, 1, 'a backup into a repository directory it may not write: exit 1');
	like($err, qr/^crawler-ha backup run: pgbackrest backup failed: ERROR: .*Permission denied.*\(exit status \d+\)$/, '... pgBackRest\'s reason: ' . $err);
	is($a->safe_psql('postgres', "SELECT detail ->> 'ok' || ' ' || (detail ->> 'step') || ' ' || (detail ->> 'type') FROM ha_events WHERE kind = 'backup' ORDER BY id DESC LIMIT 1"),
		'false backup incr', '... recorded as a failed backup event (step backup)');
	unlike($out, qr/recorded with the figures/, '... and nothing recorded as a backup');
}

# --- a damaged repository file is reported by verify ---
my $newest = $full_kept[-1]{label};
my @victims;
find(sub { push @victims, $File::Find::name if -f $_ && /\.zst$/ && -s _ > 100 }, "$repo/backup/bk_a/$newest/pg_data");
ok(@victims, 'a data file of the newest full backup');
open my $vf, '+<:raw', $victims[0] or die $!;
seek $vf, 40, 0;
print $vf 'X' x 16;
close $vf;
($prc, $pout) = pgbackrest($a, 'verify', '--output=text', '--verbose');
like($pout, qr/status: error.*backup: \Q$newest\E, status: invalid.*checksum invalid: 1/s, 'pgbackrest verify reports it');
($rc, $out, $err) = cli(run_args($a, '--type', 'incr'));
is($rc, 1, 'the next backup run: exit 1');
like($out, qr/  verify: FAILED\n/, '... its verify failed');
like($err, qr/pgbackrest verify found problems in the repository:.*status: invalid/s, '... with pgBackRest\'s report: ' . (split /\n/, $err)[0]);
is($a->safe_psql('postgres', "SELECT verify_ok::text || ' ' || (verify_detail LIKE '%checksum invalid: 1%')::text FROM ha_backups() ORDER BY id DESC LIMIT 1"),
	'false true', '... recorded as not verified, with the report');
like($a->safe_psql('postgres', "SELECT reason FROM ha_events WHERE kind = 'backup' ORDER BY id DESC LIMIT 1"),
	qr/^incr backup \S+ of stanza bk_a: verify FAILED$/, '... and its event says so');

done_testing();
