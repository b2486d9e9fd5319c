# crawler-worker as a new user meets it, on real servers: --version and each
# command's own --help; mistakes refused with the file and line; a
# conninfo that cannot work refused at once while a database that may come
# back is waited for (and the wait said); status from a standby, its
# tables 100 columns wide, an unknown session; the live line on a terminal
# with log lines above it; an unreachable seed explained; journal
# priorities; a second signal's exit status; the summary's counts
# explained; the unit, its documentation, example config and man page as
# installed; the scripts' --help; one version.
use strict;
use warnings;
use FindBin;
use File::Temp qw(tempdir);
use IPC::Run;
use JSON::PP;
use POSIX ();
use Socket ();
use Time::HiRes ();
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use CrawlerHA::Test qw(new_node ha_pair nginx_serve);

# Servers and workers started here are killed at exit, also when a test dies.
my @started;
END { eval { $_->kill_kill } for @started; }

my $worker = $ENV{CRAWLER_WORKER};
plan skip_all => 'CRAWLER_WORKER (the built crawler-worker) is not set' unless $worker && -x $worker;
my $root = "$FindBin::RealBin/../..";
my $dir = tempdir(CLEANUP => 1);

# run_worker([timeout], args...): exit status, stdout, stderr, seconds taken.
sub run_worker
{
	my $timeout = ref $_[0] eq 'HASH' ? shift->{timeout} : 60;
	my ($out, $err) = ('', '');
	my $t0 = Time::HiRes::time();
	IPC::Run::run([ $worker, @_ ], '<', \undef, '>', \$out, '2>', \$err, IPC::Run::timeout($timeout));
	return ($? >> 8, $out, $err, Time::HiRes::time() - $t0);
}

sub write_file
{
	my ($path, $text) = @_;
	open my $f, '>', $path or die "$path: $!";
	print $f $text;
	close $f;
	return $path;
}

sub read_file
{
	my ($path) = @_;
	open my $f, '<', $path or return '';
	local $/;
	my $text = <$f>;
	close $f;
	return $text;
}

# A port nothing listens on (a seed whose host refuses connections).
my $closed = PostgreSQL::Test::Cluster::get_free_port();

# status against a port nothing listens on waits 30 s for a database that may
# come back: started here, it waits beside the first checks instead of
# holding the file up for those 30 s. The shell that runs it notes when it
# ended, so that the time checked is its own, not when it was looked at.
my $refused = PostgreSQL::Test::Cluster::get_free_port();
my ($refused_out, $refused_err, $refused_end) = ('', '', "$dir/refused-status.end");
my $refused_t0 = Time::HiRes::time();
my $refused_status = IPC::Run::start(
	[ 'sh', '-c', '"$@"; rc=$?; date +%s.%N > "$0"; exit $rc', $refused_end,
		$worker, 'status', '--db', "host=127.0.0.1 port=$refused dbname=x connect_timeout=2" ],
	'<', \undef, '>', \$refused_out, '2>', \$refused_err, IPC::Run::timeout(90));
push @started, $refused_status;

my $node = new_node('friction');
$node->safe_psql('postgres', 'CREATE ROLE crawler LOGIN IN ROLE crawler_ha_writer');
my $db = 'host=' . $node->host . ' port=' . $node->port . ' dbname=postgres user=crawler';
my $storage = tempdir(CLEANUP => 1);

# ---- One version: META.json's, the extension's major.minor ----
{
	my ($rc, $out) = run_worker('--version');
	is($rc, 0, '--version exits 0');
	like($out, qr/\Acrawler-worker \d+\.\d+\.\d+\n\z/, '--version prints the version alone');
	my ($version) = $out =~ /(\d+\.\d+\.\d+)/;
	my $meta = decode_json(read_file("$root/META.json") || '{}');
	is($version, $meta->{version}, "the worker's version is META.json's");
	my ($major_minor) = ($meta->{version} // '') =~ /^(\d+\.\d+)\./;
	is($node->safe_psql('postgres', "SELECT extversion FROM pg_extension WHERE extname = 'crawler_ha'"),
		$major_minor, "the extension's version is META.json's major.minor");
  SKIP:
	{
		skip 'CRAWLER_HA (the built crawler-ha) is not set', 1 unless $ENV{CRAWLER_HA} && -x $ENV{CRAWLER_HA};
		my ($o, $e) = ('', '');
		IPC::Run::run([ $ENV{CRAWLER_HA}, '--version' ], '>', \$o, '2>', \$e);
		like($o, qr/^crawler-ha \Q$version\E\b/, 'crawler-ha has the same version');
	}
	($rc, $out) = run_worker('crawl', '--version');
	is($out, "crawler-worker $version\n", 'a command with --version prints the version too');
}

# ---- Each command's own help ----
{
	my %help;
	for my $cmd (qw(crawl run status))
	{
		my ($rc, $out) = run_worker($cmd, '--help');
		is($rc, 0, "$cmd --help exits 0 (no --db needed)");
		like($out, qr/^Usage: crawler-worker \Q$cmd\E /m, "$cmd --help shows its usage");
		$help{$cmd} = $out;
	}
	like($help{crawl}, qr/--seed\b.*--no-robots\b/s, 'crawl --help has the crawl options');
	like($help{crawl}, qr/--storage\b/, '... and the worker options');
	unlike($help{crawl}, qr/--session\b/, '... not the status options');
	like($help{run}, qr/--storage\b/, 'run --help has the worker options');
	unlike($help{run}, qr/--seed\b|--max-depth\b/, '... not the crawl options');
	like($help{status}, qr/--session\b.*--wide\b.*--json\b/s, 'status --help has the status options');
	unlike($help{status}, qr/--storage\b|--seed\b/, '... not the others');
	my ($rc, $out) = run_worker('help', 'run');
	is($out, $help{run}, 'help run is run --help');
	($rc, $out) = run_worker('--help');
	unlike($out, qr/--seed\b/, 'the program\'s help lists the commands, not every option');
	for my $cmd (qw(crawl run))
	{
		like($help{$cmd}, qr/^\s+130\s+a second SIGINT\/SIGTERM/m, "$cmd --help has exit status 130");
	}
}

# ---- Mistakes: refused with exit status 2 and what was wrong ----
{
	my ($rc, $out, $err) = run_worker('status', '--db', $db, '--log-level', 'verbose');
	is($rc, 2, '--log-level verbose is refused with exit status 2');
	like($err, qr/--log-level "verbose" is not a level: use debug, info, warning or error/, '... saying which levels exist');
	for my $crawl_only ([ '--seed', 'http://a.test/' ], ['--no-robots'], [ '--max-depth', '3' ])
	{
		($rc, $out, $err) = run_worker('run', '--db', $db, '--storage', $storage, @$crawl_only);
		is($rc, 2, "run refuses crawl's $crawl_only->[0]");
		like($err, qr/\Q$crawl_only->[0]\E is an option of crawl, not of run/, '... saying whose option it is');
	}
	my $typo = write_file("$dir/typo.conf", "db = $db\n# the store\nstorage = $storage\nconcurency = 4\n");
	($rc, $out, $err) = run_worker('run', '--config', $typo);
	is($rc, 2, 'a misspelt config key is refused');
	is($err, "crawler-worker: config file $typo, line 4: unknown option \"concurency\" (did you mean \"concurrency\"?)\n",
		'... naming the file, the line and the key meant');
	my $seed_in_run = write_file("$dir/seed.conf", "db = $db\nstorage = $storage\nseed = http://a.test/\n");
	($rc, $out, $err) = run_worker('run', '--config', $seed_in_run);
	like($err, qr/config file \Q$seed_in_run\E, line 3: "seed" is an option of crawl, not of run/,
		'a crawl option in the config file of run is refused too');
}

# ---- A bare boolean key in the config file means true; an unreachable seed explained ----
{
	my $conf = write_file("$dir/crawl.conf",
		"db = $db\nstorage = $storage\n# no robots.txt: the seed's own failure is the one shown\nno-robots\nmax-attempts = 1\n");
	my ($rc, $out, $err, $secs) = run_worker('crawl', '--config', $conf, '--seed', "http://127.0.0.1:$closed/");
	is($rc, 1, 'a crawl whose only seed is unreachable ends with exit status 1') or diag $err;
	my $sid = $node->safe_psql('postgres', 'SELECT max(id) FROM crawl_sessions');
	is($node->safe_psql('postgres', "SELECT settings ->> 'robots' FROM crawl_sessions WHERE id = $sid"),
		'false', 'a bare "no-robots" line in the config file is true');
	like($out, qr/^  1 URL failed: Couldn't connect to server\b.*\(seed host unreachable: http:\/\/127\.0\.0\.1:$closed\/\)$/m,
		'the summary gives the reason and says the seed host is unreachable');

	# With robots.txt on, the host's failure shows through its robots.txt.
	($rc, $out, $err) = run_worker('crawl', '--db', $db, '--storage', $storage, '--seed', "http://127.0.0.1:$closed/",
		'--max-attempts', '1');
	like($out,
		qr/^  1 URL failed: robots\.txt of 127\.0\.0\.1:$closed is unavailable \(Couldn't connect to server\b.*\(seed host unreachable/m,
		'... also when robots.txt was what could not be fetched');
}

# ---- A conninfo that cannot work: exit status 1 at once, one line ----
{
	my $host = $node->host;
	my $port = $node->port;
	$node->safe_psql('postgres', "CREATE ROLE pwuser LOGIN PASSWORD 'right' IN ROLE crawler_ha_writer");
	my $hba = $node->data_dir . '/pg_hba.conf';
	write_file($hba, "local all pwuser scram-sha-256\n" . read_file($hba));
	$node->reload;
	my @cases = (
		[ 'a syntax error', "host=$host port", qr/invalid --db conninfo: missing "=" after "port"/ ],
		[ 'an unknown keyword', "hots=$host", qr/invalid --db conninfo: invalid connection option "hots"/ ],
		[ 'a bad sslmode', "host=$host port=$port sslmode=bogus", qr/invalid sslmode value: "bogus"/ ],
		[ 'a wrong password', "host=$host port=$port dbname=postgres user=pwuser password=wrong",
			qr/password authentication failed for user "pwuser"/ ],
		[ 'a database that does not exist', "host=$host port=$port dbname=nodb user=crawler",
			qr/database "nodb" does not exist/ ],
		[ 'a role that does not exist', "host=$host port=$port dbname=postgres user=nobody",
			qr/role "nobody" does not exist/ ],
		[ 'a database without the extension', "host=$host port=$port dbname=template1 user=crawler",
			qr/the crawler_ha extension is not installed in database "template1"/ ]);
	my ($gai_err) = Socket::getaddrinfo('nohost.invalid', '5432');
	if ($gai_err && $gai_err + 0 == Socket::EAI_NONAME())
	{
		push @cases, [ 'a host name DNS does not know', 'host=nohost.invalid dbname=x',
			qr/could not translate host name "nohost.invalid" to address/ ];
	}
	else
	{
		note "DNS does not answer that nohost.invalid does not exist here: that case is left out";
	}
	for my $c (@cases)
	{
		my ($what, $ci, $re) = @$c;
		my ($rc, $out, $err, $secs) = run_worker('status', '--db', $ci);
		is($rc, 1, "status with $what: exit status 1");
		like($err, qr/\Acrawler-worker: cannot use the database: .*$re.*\n\z/, "... one line saying why") or diag $err;
		cmp_ok($secs, '<', 10, "... at once (${\ sprintf('%.1f', $secs)} s)");
	}
	my $bad = "host=$host port=$port dbname=postgres user=pwuser password=wrong";
	my ($rc, $out, $err, $secs) = run_worker('crawl', '--db', $bad, '--storage', $storage, '--seed', 'http://a.test/');
	is($rc, 1, 'crawl with a wrong password: exit status 1');
	like($err, qr/crawler-worker: cannot use the database: .*password authentication failed/, '... saying why');
	unlike($err, qr/waiting/, '... without waiting');
	cmp_ok($secs, '<', 10, '... at once');
	($rc, $out, $err, $secs) = run_worker('run', '--db', $bad, '--storage', $storage);
	is($rc, 1, 'run with a wrong password: exit status 1');
	like($err, qr/ error cannot use the database: .*password authentication failed.*; stopping/, '... logged as an error');
	cmp_ok($secs, '<', 10, '... at once');
}

# ---- A database that may come back is waited for, and the wait is said ----
{
	# Too many connections (the role's limit), under systemd: waited for,
	# with warning priority in the journal; once the limit goes, it answers.
	$node->safe_psql('postgres', 'ALTER ROLE crawler CONNECTION LIMIT 0');
	my $out = '';
	my $journal = "$dir/journal.err";
	my $h = IPC::Run::start(
		[ 'sh', '-c', 'JOURNAL_STREAM=$(stat -L -c %d:%i /proc/self/fd/2) exec "$0" "$@"', $worker, 'status', '--db', $db ],
		'<', \undef, '>', \$out, '2>', $journal, IPC::Run::timeout(60));
	push @started, $h;
	my $waited = 0;
	for (1 .. 100)
	{
		$waited = 1, last if read_file($journal) =~ /too many connections/;
		Time::HiRes::sleep(0.1);
	}
	ok($waited, 'status waits while the role has too many connections');
	like(read_file($journal), qr/^<4>warning database: waiting for a database that may come back \(waited 0 s\): .*too many connections for role "crawler"/m,
		'... logged with the warning priority for the journal');
	$node->safe_psql('postgres', 'ALTER ROLE crawler CONNECTION LIMIT -1');
	$h->finish;
	is($? >> 8, 0, '... and answers once connections are allowed');
	like($out, qr/^Sessions$/m, '... with its tables');

	# A server that is down when the crawl starts and comes up meanwhile.
	my $late = new_node('late');
	$late->safe_psql('postgres', 'CREATE ROLE crawler LOGIN IN ROLE crawler_ha_writer');
	$late->stop;
	my $late_db = 'host=' . $late->host . ' port=' . $late->port . ' dbname=postgres user=crawler';
	my ($cout, $cerr) = ('', '');
	my $crawl = IPC::Run::start(
		[ $worker, 'crawl', '--db', $late_db, '--storage', $storage, '--seed', "http://127.0.0.1:$closed/",
			'--no-robots', '--max-attempts', '1' ],
		'<', \undef, '>', \$cout, '2>', \$cerr, IPC::Run::timeout(90));
	push @started, $crawl;
	$crawl->pump until $cerr =~ /waiting for a database that may come back/;
	$late->start;
	$crawl->finish;
	is($? >> 8, 1, 'a crawl started while its database was down goes on once it is up');
	like($cerr, qr/connection 1 made after waiting \d+ s for the database/, '... saying how long it waited');
	like($cout, qr/^session \d+: finished/m, '... and ends with its summary');

	# A second signal while the stop waits for a database that went away.
	my ($rout, $rerr) = ('', '');
	my $run = IPC::Run::start([ $worker, 'run', '--db', $late_db, '--storage', $storage ],
		'<', \undef, '>', \$rout, '2>', \$rerr, IPC::Run::timeout(60));
	push @started, $run;
	$run->pump until $rerr =~ /serving every running session/ && $rerr =~ /database: connection 2 to/;
	$late->stop('immediate');
	Time::HiRes::sleep(1.5);    # a claim goes out and waits for the database
	$run->signal('TERM');
	$run->pump until $rerr =~ /signal 15: finishing/;
	$run->signal('TERM');
	$run->finish;
	is($? >> 8, 130, 'a second SIGTERM during the stop ends run at once with exit status 130');
	$late->start;
}

# ---- status from any node, the standby included ----
{
	my ($alpha, $beta) = ha_pair(names => [ 'fr_alpha', 'fr_beta' ]);
	$alpha->safe_psql('postgres', 'CREATE ROLE crawler LOGIN IN ROLE crawler_ha_writer');
	$beta->safe_psql('postgres', 'BEGIN READ WRITE; CREATE ROLE crawler LOGIN IN ROLE crawler_ha_writer; COMMIT');
	my $sid = $alpha->safe_psql('postgres', "SELECT crawl_start(ARRAY['http://127.0.0.1:$closed/'])");
	$beta->poll_query_until('postgres', "SELECT count(*) = 1 FROM crawl_sessions WHERE id = $sid")
	  or die 'the session did not reach the standby';
	# ha_status() shows what the HA worker has seen: the pair, once it has checked its peer.
	$beta->poll_query_until('postgres',
		"SELECT count(*) = 2 AND bool_or(is_local AND role = 'standby') FROM ha_status() WHERE role <> 'witness'")
	  or die 'the standby does not see the pair';
	my $standby = 'host=' . $beta->host . ' port=' . $beta->port . ' dbname=postgres user=crawler '
	  . 'target_session_attrs=read-write';
	my ($rc, $out, $err, $secs) = run_worker('status', '--db', $standby);
	is($rc, 0, 'status answers from the standby, even with target_session_attrs=read-write') or diag $err;
	cmp_ok($secs, '<', 10, '... at once');
	is($err, '', '... with no connection log line at info level');
	like($out, qr/^Database: .*:\Q${\ $beta->port}\E \(read-only/m, '... saying it read a read-only node');
	like($out, qr/^ \Q$sid\E\s+\| running/m, '... with the replicated session');
	like($out, qr/^ fr_beta\*\s+\| standby /m, '... and ha_status() as the standby sees it');
	my @wide = grep { length > 100 } split /\n/, $out;
	is(scalar @wide, 0, 'every line fits 100 columns') or diag join("\n", @wide);
	like($out, qr/^  fr_beta\*: /m, 'the details are under the table');

	my $both = 'host=' . $alpha->host . ',' . $beta->host . ' port=' . $alpha->port . ',' . $beta->port
	  . ' dbname=postgres user=crawler';
	($rc, $out) = run_worker('status', '--db', $both);
	like($out, qr/^Database: .*:\Q${\ $alpha->port}\E\n/m, 'with both nodes, status reads the primary');

	($rc, $out, $err) = run_worker('status', '--db', $standby, '--session', '999999');
	is($rc, 1, 'status --session of a session that does not exist: exit status 1');
	like($err, qr/^crawler-worker: session 999999 does not exist/, '... saying so');
	($rc, $out) = run_worker('status', '--db', $standby, '--session', $sid);
	is($rc, 0, 'status --session of one that exists: exit status 0');

	($rc, $out) = run_worker('status', '--db', $both, '--wide');
	like($out, qr/\bnode_name\b.*\blatency_ms\b.*\blast_failover_ms\b.*\bagent_url\b/, '--wide has every column of ha_status()');
	($rc, $out) = run_worker('status', '--db', $both, '--json');
	my $j = eval { decode_json($out) };
	ok($j, '--json prints one JSON object') or diag $@;
	is_deeply([ sort keys %{ $j // {} } ], [qw(database ha_status recent_errors sessions)], '... with the four parts');
	is((grep { $_->{id} eq $sid } @{ $j->{sessions} // [] })[0]{status}, 'running', '... the session in it');
	ok(exists $j->{ha_status}[0]{detail}, '... and every column of ha_status()');
	($rc, $out, $err) = run_worker('status', '--db', $both, '--log-level', 'debug');
	like($err, qr/ debug database: connected to /, 'status logs its connection at debug level');
	$_->stop for ($alpha, $beta);
}

# ---- On a terminal: log lines above the live line, retries counted as they happen ----
SKIP:
{
	my ($script) = grep { -x $_ } map { "$_/script" } split /:/, $ENV{PATH};
	skip 'script (util-linux) is not installed', 6 unless $script;
	my @cmd = ($worker, 'crawl', '--db', $db, '--storage', $storage, '--seed', "http://127.0.0.1:$closed/", '--no-robots');
	my $line = join ' ', map { (my $q = $_) =~ s/'/'\\''/g; "'$q'" } @cmd;
	my ($out, $err) = ('', '');
	IPC::Run::run([ $script, '-qfec', $line, '/dev/null' ], '<', \undef, '>', \$out, '2>', \$err,
		IPC::Run::timeout(60));
	my $erase = "\r\e[K";
	my $stamp = qr/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z /;
	like($out, qr/\Q$erase\Epages 0 .* errors 0  retries 1/, 'the live line counts the first retry');
	like($out, qr/\Q$erase\Epages 0 .* errors 0  retries 2/, '... and the second, as they happen');
	unlike($out, qr/retries \d+$stamp/, 'no log line is written onto the live line');
	my @after_live = $out =~ /\Q$erase\E($stamp\S+ \S+)/g;
	ok(scalar @after_live >= 2, 'log lines coming while the live line shows erase it first') or diag $out;
	like($out, qr/\Q$erase\E${stamp}info retry [^\r\n]*\r?\npages 0 /, '... and the live line is drawn again below them');
	like($out, qr/^  1 URL failed: Couldn't connect to server.*\(seed host unreachable: /m, 'the summary says why');
}

# ---- Under systemd: the journal's priorities ----
{
	my $journal = "$dir/journal2.err";
	my $sh = 'JOURNAL_STREAM=$(stat -L -c %d:%i /proc/self/fd/2) exec "$0" "$@"';
	IPC::Run::run([ 'sh', '-c', $sh, $worker, 'status', '--db', "$db dbname=nodb" ], '<', \undef, '>', \my $o1,
		'2>', $journal);
	like(read_file($journal), qr/\A<3>crawler-worker: cannot use the database: /, 'an error has the journal\'s error priority');
	IPC::Run::run([ 'sh', '-c', $sh, $worker, 'status', '--db', $db, '--log-level', 'debug' ], '<', \undef, '>', \my $o2,
		'2>', $journal);
	like(read_file($journal), qr/^<7>debug database: connected to /m, 'a debug line has the debug priority');
	unlike(read_file($journal), qr/^\d{4}-\d\d-/m, '... and no timestamp of its own');
	IPC::Run::run([ 'sh', '-c', 'JOURNAL_STREAM=1:2 exec "$0" "$@"', $worker, 'status', '--db', $db, '--log-level', 'debug' ],
		'<', \undef, '>', \my $o3, '2>', $journal);
	like(read_file($journal), qr/^\d{4}-\d\d-\d\dT\S+Z debug database: connected to /m,
		'a JOURNAL_STREAM that is not stderr leaves the lines as they are');
}

# ---- The summary explains counts that differ from this worker's ----
SKIP:
{
	skip 'nginx is not installed', 6 unless -x '/usr/sbin/nginx';
	my $site = tempdir(CLEANUP => 1);
	write_file("$site/index.html", qq{<html><body><img src="dot.gif"></body></html>\n});
	# a 1x1 GIF
	write_file("$site/dot.gif",
		"GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00,"
		  . "\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;");
	my $web = nginx_serve($site);
	push @started, $web->{harness};
	my @crawl = ('crawl', '--db', $db, '--storage', $storage, '--seed', "$web->{base}/", '--no-robots', '--delay-ms', '0');
	my ($rc, $out, $err) = run_worker(@crawl);
	is($rc, 0, 'a crawl of a small site') or diag $err;
	unlike($out, qr/other workers|already in the images table/, '... whose counts are all its own explains nothing');
	($rc, $out, $err) = run_worker(@crawl);
	like($out, qr/^  images stored   0 of /m, 'crawled again, the session stores no new image');
	like($out, qr/^  known images    0 changed, 0 unchanged, 1 fresh \(not fetched\)$/m,
		'... and says its known image was fresh, not fetched (a re-crawl within image_expiry_s)');
	unlike($out, qr/other workers|already in the images table/, '... with nothing else to explain');
	($rc, $out, $err) = run_worker(@crawl, '--image-expiry-s', '0');
	like($out, qr/^  known images    0 changed, 1 unchanged, 0 fresh \(not fetched\)$/m,
		'crawled again with --image-expiry-s 0: the image confirmed unchanged (nginx answers 304)');
}

# ---- The unit, its documentation and example config, as installed ----
SKIP:
{
	my $installed = "$ENV{CRAWLER_HA_TESTS}/installed";
	skip 'no installed tree (scripts/check installs one with DESTDIR)', 8 unless $ENV{CRAWLER_HA_TESTS} && -d $installed;
	my $unit = read_file("$installed/etc/systemd/system/crawler-worker.service");
	ok($unit, 'the unit is installed in /etc/systemd/system');
	like($unit, qr/^RestartPreventExitStatus=2$/m, 'a configuration error (exit status 2) is not restarted');
	my ($docs) = $unit =~ /^Documentation=(.*)$/m;
	for my $uri (split ' ', $docs // '')
	{
		if ($uri =~ /^man:([\w.-]+)\((\d)\)$/)
		{
			ok(-f "$installed/usr/local/share/man/man$2/$1.$2", "Documentation= $uri is installed");
		}
		elsif ($uri =~ m{^file://(/.*)$})
		{
			ok(-f "$installed$1", "Documentation= $uri is installed");
		}
		else
		{
			fail("Documentation= $uri is neither man: nor file://");
		}
	}
	my $example = "$installed/usr/local/share/doc/crawler_ha/crawler-worker.conf.example";
	ok(-f $example, 'the example config is installed');
	my ($rc, $out, $err) = run_worker('status', '--config', $example, '--db', $db);
	is($rc, 0, '... and every key in it is an option with a valid value') or diag $err;

	my $man = "$installed/usr/local/share/man/man1/crawler-worker.1";
	my ($gout, $gerr) = ('', '');
	IPC::Run::run([ 'groff', '-man', '-ww', '-z', '-Tutf8', $man ], '>', \$gout, '2>', \$gerr);
	is($gerr, '', 'the man page renders without a warning');
	my $roff = read_file($man);
	for my $cmd (qw(crawl run status export))
	{
		my (undef, $help) = run_worker($cmd, '--help');
		# roff writes each dash of an option as \-
		my @missing = grep {
			my $name = join('\\\\-', map { quotemeta } split /-/);
			$roff !~ /\\-\\-$name\b/
		} $help =~ /^\s+(?:-\w \[ )?--([\w-]+)/mg;
		is_deeply(\@missing, [], "the man page has every option of $cmd --help");
	}
	like($roff, qr/^\.B 130$/m, 'the man page has exit status 130');
}

# ---- The scripts' --help ----
{
	my ($out, $err) = ('', '');
	IPC::Run::run([ "$root/scripts/demo", '--help' ], '<', \undef, '>', \$out, '2>', \$err);
	is($? >> 8, 0, 'scripts/demo --help exits 0');
	like($out, qr/\AUsage: scripts\/demo \[--seed URL\]\n/, '... with a usage line');
	like($out, qr/--seed URL\s+crawl a real site/, '... explaining --seed');
	like($out, qr/\.\n\z/, '... and ends with a whole sentence');
	unlike($out, qr/set -e|\$\(|^\s*#/m, '... and no shell code');
	($out, $err) = ('', '');
	IPC::Run::run([ "$root/scripts/check", '--help' ], '<', \undef, '>', \$out, '2>', \$err);
	is($? >> 8, 0, 'scripts/check --help exits 0');
	like($out, qr/\AUsage: scripts\/check /, '... with a usage line');
	unlike($out, qr/set -e|\$\(|^\s*#|; then/m, '... and no shell code');
	my @named = $out =~ m{\b(t/\d+_\w+\.pl)\b}g;
	ok(scalar @named, '... naming test files');
	ok(-f "$root/test/$_", "... $_ exists") for @named;
}

# ---- A database that may come back, continued ----
{
	# A refused connection: status waits its 30 s, saying for how long (it
	# was started at the top of this file and has waited beside the rest).
	$refused_status->finish;
	my ($rc, $err, $secs) = ($? >> 8, $refused_err, read_file($refused_end) - $refused_t0);
	is($rc, 1, 'status against a refused port ends with exit status 1');
	like($err, qr/warning database: waiting for a database that may come back \(waited 0 s\): .*Connection refused/,
		'... after saying it waits for a database that may come back');
	like($err, qr/waiting for a database that may come back \(waited 1\d s\)/, '... and for how long, again');
	like($err, qr/crawler-worker: no database answered within 30 s\n\z/, '... until its 30 s are over');
	unlike($err, qr/cannot use the database/, '... never calling it a setting that cannot work');
	cmp_ok($secs, '>=', 29, '... waiting its 30 s');
}

done_testing();
