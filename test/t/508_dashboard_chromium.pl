# The agent's dashboard (GET / on the application port) in a real browser:
# headless Chromium (Debian's chromium) loads it from a live pair with its
# agents, a crawl and stored images, once for a screenshot and once for the
# DOM after its scripts ran. The page must fill itself from the JSON API
# (the nodes with their roles and term, the crawl with its counts, the
# newest twelve thumbnails, the events, the alerts, the lag graph) and
# agree with what the API answers in this test, without one console message
# (a script error, a refused inline script or style); with
# read_token_required it must ask for the token, and with the token show
# the same, its thumbnails fetched with the token.
use strict;
use warnings;
use Compress::Zlib ();
use Digest::SHA qw(sha256_hex);
use File::Temp qw(tempdir);
use IPC::Run;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time sleep);
use CrawlerHA::Test qw(ha_pair);
use CrawlerHA::Agent qw(agent_start agent_stop agent_kill agent_pki agent_curl agent_wait_log);

my $chromium = '/usr/bin/chromium';
plan skip_all => 'CRAWLER_HA (the built crawler-ha) is not set' unless $ENV{CRAWLER_HA} && -x $ENV{CRAWLER_HA};
plan skip_all => 'chromium is not installed (apt-get install chromium)' unless -x $chromium;

my @agents;
END
{
	eval { agent_kill($_) } for @agents;
}

my ($p, $s) = ha_pair(names => [ 'dash_p', 'dash_s' ]);
my $ap = agent_start($p);
my $as = agent_start($s);
push @agents, $ap, $as;
my $pki = agent_pki();

# png($w, $h, $r, $g, $b): a PNG of one colour with a diagonal stripe.
sub png
{
	my ($w, $h, @rgb) = @_;
	my $raw = '';
	for my $y (0 .. $h - 1)
	{
		$raw .= "\0" . join('', map { abs($_ - $y) < 6 ? "\0\0\0" : pack('C3', @rgb) } 0 .. $w - 1);
	}
	my $chunk = sub {
		my ($type, $data) = @_;
		return pack('N', length $data) . $type . $data . pack('N', Compress::Zlib::crc32($type . $data));
	};
	return "\x89PNG\r\n\x1a\n" . $chunk->('IHDR', pack('NNC5', $w, $h, 8, 2, 0, 0, 0))
	  . $chunk->('IDAT', Compress::Zlib::compress($raw)) . $chunk->('IEND', '');
}

# api($agent, $route, %opt): the decoded JSON of a GET (with the shared
# token unless token => 0), or undef; dies unless the status is 200.
sub api
{
	my ($agent, $route, %o) = @_;
	my ($code, $body) = agent_curl($agent, (($o{token} // 1) ? () : ('--no-token')), $route);
	die "GET $route: $code $body" unless $code eq '200';
	return decode_json($body);
}

# --- a crawl with images: blobs PUT to the primary's agent, rows recorded ---
my $tmp = tempdir(CLEANUP => 1);
my $sid = $p->safe_psql('postgres', "SELECT crawl_start(ARRAY['http://dash.example/'])");
like($sid, qr/^\d+$/, "crawl $sid started");
my @blobs;
for my $i (0 .. 13)
{
	my ($w, $h) = (160 + 10 * $i, 120 + 5 * ($i % 4));
	my $bytes = png($w, $h, (37 * $i) % 256, (91 * $i + 40) % 256, (53 * $i + 120) % 256);
	my $sha = sha256_hex($bytes);
	open my $f, '>:raw', "$tmp/$sha.png" or die $!;
	print $f $bytes;
	close $f;
	# The agent takes uploads once it knows its node is the primary.
	my ($code, $body) = ('', '');
	for (1 .. 100)
	{
		($code, $body) = agent_curl($ap, '-T', "$tmp/$sha.png", "/api/blobs/$sha.png");
		last if $code =~ /^20[01]$/;
		sleep 0.2;
	}
	die "PUT blob $i: $code $body" unless $code =~ /^20[01]$/;
	push @blobs, { sha => $sha, size => length $bytes, w => $w, h => $h };
}
# More rows than one page of the dashboard's search (100), so that it has
# to look for the newest; the files are shared by several rows.
my $n_images = 130;
$p->safe_psql('postgres', join(';',
		map {
			my $b = $blobs[ $_ % @blobs ];
			my $path = substr($b->{sha}, 0, 2) . '/' . substr($b->{sha}, 2, 2) . "/$b->{sha}.png";
			"SELECT image_record($sid, 'http://dash.example/img/$_.png', '$b->{sha}', '$path', $b->{size}, "
			  . "$b->{w}, $b->{h}, 'png', 'image/png', 'http://dash.example/')"
		} 1 .. $n_images));
is($p->safe_psql('postgres', "SELECT images_stored FROM crawl_session_totals WHERE session_id = $sid"), $n_images,
	"$n_images images recorded (" . scalar(@blobs) . ' files)');

# The lag history: the primary's sampler reads ha_status() every 5 s.
my $hist;
my $t0 = time;
while (time - $t0 < 30)
{
	$hist = api($ap, '/api/lag-history');
	last if grep({ defined $_->{lag_bytes} } @{ $hist->{samples} }) >= 2;
	sleep 0.5;
}
my @measured = grep { defined $_->{lag_bytes} && defined $_->{lag_seconds} } @{ $hist->{samples} };
cmp_ok(scalar(@measured), '>=', 2, 'GET /api/lag-history on the primary: samples with the lag measured');
ok(!grep({ $_->{at} !~ /^\d+$/ || abs($_->{at} - time) > 3600 } @{ $hist->{samples} }), '... at: recent Unix seconds');
my $shist = api($as, '/api/lag-history');
ok(!grep({ defined $_->{lag_bytes} } @{ $shist->{samples} }), 'on the standby: no lag measured (null)');

# --- what the JSON API says, to compare the page with ---
my $nodes = api($ap, '/api/ha-status')->{nodes};
my %node = map { $_->{node_name} => $_ } @$nodes;
is(join(' ', map { "$_:$node{$_}{role}" } sort keys %node), 'dash_p:primary dash_s:standby', 'GET /api/ha-status: both nodes');
my $crawl = (grep { $_->{session_id} == $sid } @{ api($ap, '/api/crawls?limit=10')->{crawls} })[0];
is($crawl->{images_stored}, $n_images, "GET /api/crawls: crawl $sid with $n_images images stored");
my @ids;
my $after = 0;
while (1)
{
	my $page = api($ap, "/api/images?limit=1000&after=$after");
	last unless @{ $page->{images} };
	push @ids, map { $_->{id} } @{ $page->{images} };
	$after = $page->{next_after};
}
is(scalar @ids, $n_images, "GET /api/images: $n_images images");
my @newest = reverse @ids[ -12 .. -1 ];
my $events = api($ap, '/api/events?limit=1000');
cmp_ok(scalar @{ $events->{events} }, '>', 0, 'GET /api/events on the application port: ' . scalar(@{ $events->{events} }) . ' events');
my @event_ids = reverse map { $_->{id} } @{ $events->{events} };
splice(@event_ids, 50) if @event_ids > 50;
my $have_alerts = $p->safe_psql('postgres', "SELECT count(*) > 0 FROM pg_proc WHERE proname = 'ha_alerts'") eq 't';
my ($alerts_code, $alerts_body) = agent_curl($ap, '/api/alerts');
my $active_alerts;
if ($have_alerts)
{
	is($alerts_code, '200', 'GET /api/alerts: 200 (ha_alerts() is installed)');
	$active_alerts = grep { $_->{active} } @{ decode_json($alerts_body)->{alerts} };
}
else
{
	is($alerts_code, '503', 'GET /api/alerts: 503 (ha_alerts() is not installed)');
}

# --- the browser ---
# chromium($url, @mode): (stdout, stderr, status) of one headless run with
# a profile and HOME of its own (the tests' user may have no writable
# HOME). The test CA is not in any trust store Chromium reads, and headless
# Chromium takes no CA file: certificate errors are ignored, which on
# loopback to a server this test started costs nothing.
sub chromium
{
	my ($url, @mode) = @_;
	my $dir = tempdir(CLEANUP => 1);
	local $ENV{HOME} = $dir;
	local $ENV{XDG_CONFIG_HOME} = "$dir/config";
	local $ENV{XDG_CACHE_HOME} = "$dir/cache";
	my @cmd = ($chromium, '--headless=new', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage',
		"--user-data-dir=$dir/profile", '--ignore-certificate-errors', '--no-first-run', '--disable-extensions',
		'--disable-background-networking', '--disable-component-update', '--disable-sync', '--hide-scrollbars',
		'--window-size=1280,1000', '--virtual-time-budget=12000', '--enable-logging=stderr', '--v=0', @mode, $url);
	my ($out, $err) = ('', '');
	my $ok = eval { IPC::Run::run(\@cmd, '<', \'', '>', \$out, '2>', \$err, IPC::Run::timeout(180)); 1 };
	diag("chromium: $@") unless $ok;
	return ($out, $err, $?);
}

# console($stderr): the page's console messages (CONSOLE lines), which a
# script error or a refused inline script or style would add.
sub console
{
	return grep { /:CONSOLE[:(]/ } split /\n/, $_[0];
}

# section($dom, $tag, $id): the markup inside <$tag id="$id">...</$tag>
# (the first closing tag: for elements without one of their kind inside).
sub section
{
	my ($dom, $tag, $id) = @_;
	return $dom =~ m{<$tag\b[^>]*\bid="\Q$id\E"[^>]*>(.*?)</$tag>}s ? $1 : '';
}

# cell($row, $class): the text of the <td class="$class"> of a table row.
sub cell
{
	my ($row, $class) = @_;
	return $row =~ m{<td class="\Q$class\E">(.*?)</td>}s ? $1 =~ s/<[^>]*>//gr : undef;
}

my $url = "$ap->{url}/";
my $shot = "$tmp/dashboard.png";
my ($out, $err, $rc) = chromium($url, "--screenshot=$shot");
is($rc, 0, 'chromium --screenshot ran') or diag($err);
ok(-f $shot, '... and wrote the screenshot');
my $png = do { local $/; open my $f, '<:raw', $shot or die "$shot: $!"; <$f> } // '';
is(substr($png, 0, 8), "\x89PNG\r\n\x1a\n", '... a PNG');
is(join('x', unpack('NN', substr($png, 16, 8))), '1280x1000', '... of the window\'s size');
cmp_ok(length $png, '>', 30_000, '... with something drawn in it (' . length($png) . ' bytes)');
is(join("\n", console($err)), '', '... no console message while it loaded');
# Kept with the logs, for a person to look at.
system('cp', $shot, "$PostgreSQL::Test::Utils::log_path/508_dashboard.png");

($out, $err, $rc) = chromium($url, '--dump-dom');
is($rc, 0, 'chromium --dump-dom ran') or diag($err);
my $dom = $out;
is(join("\n", console($err)), '', '... no console message');
like(section($dom, 'span', 'status'), qr/^updated \d\d:\d\d:\d\d, every 5 s$/, '... the page refreshed itself without a failing part')
  or diag(section($dom, 'span', 'status'));
like(section($dom, 'section', 'auth') . ($dom =~ /<section class="auth" id="auth" hidden/ ? 'HIDDEN' : ''), qr/HIDDEN$/,
	'... and asks for no token');
is(section($dom, 'span', 'where'), "node dash_p, primary, term $node{dash_p}{term}", '... its header names this node, role and term');

# The nodes, as /api/ha-status says.
for my $name (sort keys %node)
{
	my ($row) = $dom =~ m{<tr data-node="\Q$name\E">(.*?)</tr>}s;
	ok($row, "the nodes table has $name");
	is(cell($row // '', 'role'), $node{$name}{role}, "... role $node{$name}{role}");
	is(cell($row // '', 'num term'), $node{$name}{term}, "... term $node{$name}{term}");
	is(cell($row // '', 'health'), $node{$name}{healthy} ? 'healthy' : 'unhealthy', '... its health');
	my $said = sub { my ($v, $yes) = @_; !defined $v ? '-' : $v ? $yes : 'no' };
	is(cell($row // '', 'fenced'), $said->($node{$name}{fenced}, 'fenced'), '... fenced as ha_status() says');
	is(cell($row // '', 'paused'), $said->($node{$name}{paused}, 'paused'), '... paused as ha_status() says');
}

# The crawl, as /api/crawls says, with its progress bar.
my ($crow) = $dom =~ m{<tr data-crawl="$sid">(.*?)</tr>}s;
ok($crow, "the crawls table has crawl $sid");
is(cell($crow // '', 'num stored'), $crawl->{images_stored}, "... images stored: $crawl->{images_stored}");
is(cell($crow // '', 'num found'), $crawl->{images_found}, "... images found: $crawl->{images_found}");
is(cell($crow // '', 'num pages'), $crawl->{pages_fetched}, "... pages fetched: $crawl->{pages_fetched}");
is(cell($crow // '', 'num errors'), $crawl->{errors}, "... errors: $crawl->{errors}");
like($crow // '', qr/<progress max="1" value="0">/, '... a progress bar: its one queued seed, none done');
like(cell($crow // '', 'num rate') // '', qr{pages/s}, '... and a rate');

# The newest twelve images, newest first, with their thumbnails.
my $grid = $dom =~ m{<div id="images">(.*?)</div>\s*<p class="note" id="images-note"}s ? $1 : '';
my @shown = $grid =~ /<figure class="thumb" data-image="(\d+)"/g;
is_deeply(\@shown, \@newest, 'the 12 newest images, newest first, as GET /api/images lists them');
my @srcs = $grid =~ /<img [^>]*src="([^"]*)"/g;
is_deeply(\@srcs, [ map { "/api/images/$_/thumbnail?size=128" } @newest ], '... each an <img> of its 128 px thumbnail');
my %sha_by_id = map { split /\|/ } split /\n/, $p->safe_psql('postgres', 'SELECT id, sha256 FROM images');
my @made = grep { my @f = glob("$ap->{store}/.thumbnails/128/*/$sha_by_id{$_}.*"); @f } @newest;
is(scalar @made, 12, '... which the browser fetched: the agent made them');

# The events, newest first.
my @shown_events = section($dom, 'ol', 'events') =~ /<li data-event="(\d+)"/g;
is_deeply(\@shown_events, \@event_ids, 'the event timeline: GET /api/events\' events, newest first');

# The alerts.
my $alerts_note = section($dom, 'p', 'alerts-note');
if ($have_alerts)
{
	my @li = section($dom, 'ul', 'alerts') =~ /<li data-alert=/g;
	is(scalar @li, $active_alerts, "the alerts card lists the $active_alerts active alert(s)");
	unlike($alerts_note, qr/unavailable/, '... and says nothing is unavailable');
}
else
{
	like($alerts_note, qr/^alerts unavailable/, 'ha_alerts() missing: the card says "alerts unavailable"');
}

# The lag graph: drawn from the samples.
like(section($dom, 'svg', 'lag-seconds'), qr/<path class="line-seconds" d="M[0-9. ]/, 'the lag graph (seconds) has its line');
like(section($dom, 'svg', 'lag-bytes'), qr/<path class="line-bytes" d="M[0-9. ]/, '... and the bytes graph');
like(section($dom, 'p', 'lag-note'), qr/^latest: /, '... with the latest value under it');

# Without ha_alerts() (an extension older than the alerts): the card says
# so, the other cards are shown, and nothing reaches the console.
$p->safe_psql('postgres', 'ALTER FUNCTION ha_alerts() RENAME TO ha_alerts_away') if $have_alerts;
is((agent_curl($ap, '/api/alerts'))[0], '503', 'ha_alerts() missing: GET /api/alerts answers 503');
($out, $err, $rc) = chromium($url, '--dump-dom');
like(section($out, 'p', 'alerts-note'), qr/^alerts unavailable: HTTP 503 database_error: /,
	'... the alerts card says "alerts unavailable" and why');
is(scalar(() = section($out, 'ul', 'alerts') =~ /<li/g), 0, '... and lists nothing');
like(section($out, 'span', 'status'), qr/^updated \d\d:\d\d:\d\d, every 5 s$/, '... while the other parts answered');
like($out, qr/<tr data-crawl="$sid">/, '... and are shown');
is(join("\n", console($err)), '', '... without a console message');
$p->safe_psql('postgres', 'ALTER FUNCTION ha_alerts_away() RENAME TO ha_alerts') if $have_alerts;

# The standby's agent: the same cluster, and a note instead of a lag graph.
($out, $err, $rc) = chromium("$as->{url}/", '--dump-dom');
is(join("\n", console($err)), '', 'the standby\'s dashboard: no console message');
is(section($out, 'span', 'where'), "node dash_s, standby, term $node{dash_s}{term}", '... its header names the standby');
like(section($out, 'p', 'lag-note'), qr/standby: the lag is measured on the primary/, '... and says where the lag is measured');
is_deeply([ $out =~ /<figure class="thumb" data-image="(\d+)"/g ], \@newest, '... the same newest images');

# --- read_token_required: the page asks for the token ---
agent_stop($ap);
agent_start($p, agent => $ap, args => ['--read-token-required']);
is((agent_curl($ap, '--no-token', '/api/ha-status'))[0], '401', 'read_token_required: the API wants a token');
is((agent_curl($ap, '--no-token', "$ap->{url}/"))[0], '200', '... the page does not');
($out, $err, $rc) = chromium($url, '--dump-dom');
is(join("\n", console($err)), '', 'without a token: no console message (a 401 is handled)');
unlike($out, qr/<section class="auth" id="auth" hidden/, '... the token form is shown');
like($out, qr/<input id="token" name="token" type="password"/, '... with its password field');
is(scalar(() = $out =~ /<tr data-node=/g), 0, '... and no data');
like(section($out, 'span', 'status'), qr/a token is needed/, '... the status line says why');

# The token in the fragment (never sent to the server) goes to
# sessionStorage; thumbnails are fetched with it and shown from blob: URLs.
($out, $err, $rc) = chromium("$url#token=$pki->{token}", '--dump-dom');
is(join("\n", console($err)), '', 'with the token: no console message');
like($out, qr/<section class="auth" id="auth" hidden/, '... the token form is hidden');
like($out, qr/<tr data-node="dash_p">/, '... the nodes are shown');
like($out, qr/<tr data-crawl="$sid">/, '... the crawl');
my @blob_srcs = $out =~ m{<img [^>]*src="(blob:https://127\.0\.0\.1:$ap->{port}/[0-9a-f-]+)"}g;
is(scalar @blob_srcs, 12, '... and 12 thumbnails from blob: URLs (fetched with the token)');
unlike($out, qr/\Q$pki->{token}\E/, '... and the token appears nowhere in the page');
like(section($out, 'span', 'status'), qr/^updated \d\d:\d\d:\d\d, every 5 s$/, '... every part answered');

($out, $err, $rc) = chromium("$url#token=wrong-token", '--dump-dom');
like(section($out, 'p', 'auth-note'), qr/not accepted/, 'a wrong token: the page says it is not accepted');
is(join("\n", console($err)), '', '... without a console message');

agent_stop($_) for @agents;
done_testing();
