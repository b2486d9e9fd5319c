# The application port's JSON API on a real pair: a crawl of the sample
# site (diveintohtml5, served by nginx) started, watched and listed through
# POST/GET /api/crawls, a real crawler-worker storing through the agents,
# then the images listed with every filter and walked page by page, their
# bytes (ETag, Range, If-None-Match) and thumbnails (libvips) fetched; bad
# input, hostile strings, wrong callers and a standby. The OpenAPI document
# the agent serves is validated by a real validator (JSON::Validator,
# Debian's libjson-validator-perl) and every answer of this test is
# checked against it: its status must be documented for that route, its
# headers and JSON body must match the document's schemas.
use strict;
use warnings;
use Digest::SHA;
use File::Temp qw(tempdir);
use FindBin;
use IPC::Run;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use CrawlerHA::Test qw(ha_pair ha_multihost nginx_serve);
use CrawlerHA::Agent qw(agent_start agent_stop agent_kill agent_pki);

my $worker_bin = $ENV{CRAWLER_WORKER};
plan skip_all => 'CRAWLER_WORKER (the built crawler-worker) is not set' unless $worker_bin && -x $worker_bin;
plan skip_all => 'CRAWLER_HA (the built crawler-ha) is not set' unless $ENV{CRAWLER_HA} && -x $ENV{CRAWLER_HA};
plan skip_all => 'nginx is not installed' unless -x '/usr/sbin/nginx';
plan skip_all => 'JSON::Validator is not installed (scripts/install-deps installs libjson-validator-perl)'
  unless eval { require JSON::Validator; 1 };
my $shared = $ENV{CRAWLER_HA_SHARED};
my $site = $shared ? "$shared/sites/diveintohtml5" : undef;
plan skip_all => 'the site ../shared/sites/diveintohtml5 is absent (CRAWLER_HA_SHARED unset or wrong): nothing to crawl'
  unless $site && -f "$site/index.html";

my (@agents, @started);
END
{
	eval { $_->kill_kill } for @started;
	eval { agent_kill($_) } for @agents;
}

my $web = nginx_serve($site);
push @started, $web->{harness};

my ($p, $s) = ha_pair(names => [ 'app_p', 'app_s' ]);
$_->safe_psql('postgres', 'BEGIN READ WRITE; CREATE ROLE crawler LOGIN IN ROLE crawler_ha_writer; COMMIT') for ($p, $s);

# Scoped tokens, kept hashed.
my $tokdir = tempdir(CLEANUP => 1);
my %tok = map { $_ => "tok-$_-" . join('', map { ('a' .. 'z')[ int rand 26 ] } 1 .. 24) } qw(read operate admin);
open my $tf, '>', "$tokdir/api_tokens" or die $!;
print $tf "$_ " . Digest::SHA::sha256_hex($tok{$_}) . " $_-token\n" for qw(read operate admin);
close $tf;
chmod 0600, "$tokdir/api_tokens";
my @args = ('--api-tokens-file', "$tokdir/api_tokens", '--thumbnail-sizes', '64,128,256');
my $ap = agent_start($p, args => \@args);
my $as = agent_start($s, args => \@args);
push @agents, $ap, $as;
my $pki = agent_pki();

# --- talking to an agent, and checking every answer against the document ---
my $tmp = tempdir(CLEANUP => 1);
my ($spec, $doc_paths, %exercised);

# req($agent, $method, $route, %opt): { code, headers (lower-case names),
# body, json }. Options: token => 'read'|'operate'|'admin'|'shared'|'none'
# (default shared), body => JSON text, headers => [ 'Name: value' ],
# op => '/api/x/{id}' (the document's path, to check the answer against).
sub req
{
	my ($agent, $method, $route, %o) = @_;
	my $token = $o{token} // 'shared';
	my @cmd = ('curl', '-sS', '--cacert', $pki->{ca}, '-D', "$tmp/h", '-o', "$tmp/b", '-w', '%{http_code}');
	push @cmd, $method eq 'HEAD' ? ('-I') : ('-X', $method);
	push @cmd, '-H', 'Authorization: Bearer ' . ($token eq 'shared' ? $pki->{token} : $tok{$token})
	  unless $token eq 'none';
	push @cmd, '-H', 'Content-Type: application/json', '--data-binary', '@-' if defined $o{body};
	push @cmd, map { ('-H', $_) } @{ $o{headers} // [] };
	push @cmd, "$agent->{url}$route";
	my ($out, $err) = ('', '');
	unlink "$tmp/h", "$tmp/b";
	IPC::Run::run(\@cmd, '<', \($o{body} // ''), '>', \$out, '2>', \$err);
	my %r = (code => $out);
	open my $hf, '<', "$tmp/h" or die "curl @cmd: $err";
	for (<$hf>)
	{
		s/\r?\n$//;
		$r{headers}{ lc $1 } = $2 if /^([^:]+):\s*(.*)$/;
	}
	close $hf;
	$r{body} = '';
	# HEAD (-I): curl writes the header block to -o; the answer had no body.
	if ($method ne 'HEAD' && open my $bf, '<:raw', "$tmp/b")
	{
		local $/;
		$r{body} = <$bf> // '';
		close $bf;
	}
	$r{json} = eval { decode_json($r{body}) } if ($r{headers}{'content-type'} // '') =~ m{^application/json};
	check_answer($method, $o{op} // $route, \%r) if $spec;
	return \%r;
}

# check_answer: the answer's status is documented for the operation, and
# its headers and body match the document. Counts the operation exercised.
sub check_answer
{
	my ($method, $op, $r) = @_;
	my $m = $method eq 'HEAD' ? 'get' : lc $method;
	# Routes and methods the document does not have are checked apart (404, 405).
	return unless $doc_paths && $doc_paths->{$op} && $doc_paths->{$op}{$m};
	$exercised{"$m $op"} = 1;
	my $params = $spec->parameters_for_response([ $m, $op, $r->{code} ]);
	if (!$params)
	{
		fail("$method $op answered $r->{code}, a status the document does not list for it");
		return;
	}
	my $body = $method eq 'HEAD' || $r->{code} eq '304' || $r->{body} eq '' ? undef
	  : defined $r->{json} ? $r->{json} : $r->{body};
	my @e = $spec->validate_response(
		[ $m, $op, $r->{code} ],
		{
			body => sub {
				return { exists => defined $body, value => $body,
					content_type => ($r->{headers}{'content-type'} // '') =~ s/;.*//r };
			},
			header => sub {
				my $n = lc $_[0];
				return { exists => exists $r->{headers}{$n}, value => $r->{headers}{$n} };
			},
		});
	$exercised{errors}++ if @e;
	is(join('; ', @e), '', "$method $op $r->{code}: matches the OpenAPI document") if @e;
}

# --- the document itself ---
my $doc = req($ap, 'GET', '/api/openapi.json', token => 'none');
is($doc->{code}, '200', 'GET /api/openapi.json without a token: 200');
is($doc->{json}{openapi}, '3.0.3', '... an OpenAPI 3.0.3 document');
open my $df, '<', "$FindBin::RealBin/../../docs/openapi.json" or die $!;
my $in_repo = do { local $/; <$df> };
close $df;
is($doc->{body}, $in_repo, '... exactly docs/openapi.json');
$spec = JSON::Validator->new->schema($doc->{json})->schema;
$doc_paths = $doc->{json}{paths};
is(ref $spec, 'JSON::Validator::Schema::OpenAPIv3', 'JSON::Validator reads it as OpenAPI 3');
is(join("\n", @{ $spec->errors }), '', '... and finds no error in it (against the OpenAPI 3.0 schema)');
# The validator can fail: a document with an operation that has no responses.
my $broken = decode_json($doc->{body});
delete $broken->{paths}{'/api/images'}{get}{responses};
ok(scalar @{ JSON::Validator->new->schema($broken)->schema->errors }, '... while a broken copy has errors');
$exercised{'get /api/openapi.json'} = 1;

# --- a crawl through the API, stored through the agents by a real worker ---
my $r = req($ap, 'POST', '/api/crawls', token => 'operate', op => '/api/crawls',
	body => encode_json({ seeds => ["$web->{base}/"], options => { max_depth => 3, delay_ms => 0 } }));
is($r->{code}, '201', 'POST /api/crawls with an operate token: 201') or diag $r->{body};
my $sid = $r->{json}{crawl}{session_id};
ok($sid && $r->{json}{crawl}{status} eq 'running', "... crawl $sid is running");
is($r->{headers}{location}, "/api/crawls/$sid", '... Location: /api/crawls/ID');
is($p->safe_psql('postgres', "SELECT settings->>'max_depth' FROM crawl_sessions WHERE id = $sid"), '3',
	'... with the options given (crawl_start() read them)');

my $spool = tempdir(CLEANUP => 1);
my ($wout, $werr) = ('', '');
my $worker = IPC::Run::start(
	[ $worker_bin, 'run', '--db', ha_multihost($p, $s) . ' user=crawler', '--storage-agent',
		'--agent-token-file', $pki->{token_file}, '--agent-ca-file', $pki->{ca}, '--spool', $spool ],
	'>', \$wout, '2>', \$werr, IPC::Run::timeout(600));
push @started, $worker;

# Reads while the crawl runs: the list grows, status answers from both nodes.
my ($seen_running, $done) = (0, 0);
for (1 .. 1200)
{
	$r = req($ap, 'GET', "/api/crawls/$sid", op => '/api/crawls/{id}');
	$seen_running ||= $r->{json}{crawl}{status} eq 'running' && $r->{json}{crawl}{images_stored} > 0;
	$done = 1, last if ($r->{json}{crawl}{status} // '') eq 'finished';
	req($ap, 'GET', "/api/images?session=$sid&limit=50", op => '/api/images');
	select undef, undef, undef, 0.1;
}
ok($seen_running, 'GET /api/crawls/ID showed the crawl running with images stored');
ok($done, 'the crawl finished') or diag $werr;
$worker->signal('TERM');
$worker->finish;
my $crawl = $r->{json}{crawl};
cmp_ok($crawl->{images_stored}, '>', 50, "it stored $crawl->{images_stored} images");
is($crawl->{queued} + $crawl->{leased}, 0, '... nothing queued or leased');

$r = req($ap, 'GET', '/api/crawls', op => '/api/crawls');
is($r->{code}, '200', 'GET /api/crawls: 200');
is($r->{json}{crawls}[0]{session_id}, $sid, '... newest first');
is($r->{json}{crawls}[0]{first_seed}, "$web->{base}/", '... with its first seed');
my $sid2 = req($ap, 'POST', '/api/crawls', token => 'admin', op => '/api/crawls',
	body => encode_json({ seeds => [ "$web->{base}/a", "$web->{base}/b" ] }))->{json}{crawl}{session_id};
ok($sid2 && $sid2 > $sid, 'an admin token may start a crawl too');
$r = req($ap, 'POST', "/api/crawls/$sid2/stop", token => 'operate', op => '/api/crawls/{id}/stop');
is($r->{code} . ' ' . ($r->{json}{stopped} ? 'stopped' : '-') . ' ' . $r->{json}{crawl}{status}, '200 stopped stopped',
	'POST /api/crawls/ID/stop: 200, stopped, its status says so');
$r = req($ap, 'POST', "/api/crawls/$sid2/stop", token => 'operate', op => '/api/crawls/{id}/stop', body => '{}');
is($r->{code} . ' ' . ($r->{json}{stopped} ? 'stopped' : 'not'), '200 not', '... again: stopped false (it was not running)');
$r = req($ap, 'GET', '/api/crawls?limit=1', op => '/api/crawls');
is(scalar @{ $r->{json}{crawls} }, 1, 'GET /api/crawls?limit=1: one crawl');
$r = req($ap, 'GET', "/api/crawls?limit=1&before=$r->{json}{next_before}", op => '/api/crawls');
is($r->{json}{crawls}[0]{session_id}, $sid, '... the next page (before=next_before) holds the older one');
$r = req($ap, 'GET', "/api/crawls?before=$sid", op => '/api/crawls');
is_deeply([ $r->{json}{crawls}, $r->{json}{next_before} ], [ [], undef ], '... and after it an empty page with next_before null');

# --- images: the list, walked page by page, and every filter ---
my @ids = split /\n/, $p->safe_psql('postgres', "SELECT id FROM images WHERE session_id = $sid ORDER BY id");
my @walked;
my $after = 0;
my $pages = 0;
while (1)
{
	$r = req($ap, 'GET', "/api/images?session=$sid&limit=7&after=$after", op => '/api/images');
	last unless $r->{code} eq '200' && @{ $r->{json}{images} };
	push @walked, map { $_->{id} } @{ $r->{json}{images} };
	$after = $r->{json}{next_after};
	last if ++$pages > 1000;
}
is_deeply(\@walked, \@ids, 'GET /api/images walked 7 at a time (after=next_after) gives every image once, in id order ('
	  . scalar(@ids) . ')');
# A host is compared with its port, as crawl_url_host_of() writes it.
(my $web_host = $web->{base}) =~ s{^https?://}{};
$web_host =~ s{/.*}{};
my %count = (
	"host=$web_host" => 'true',
	'format=png' => "format = 'png'",
	'format=PNG' => "format = 'png'",
	'min_bytes=10000' => 'file_size >= 10000',
	'min_width=200&min_height=100' => 'width >= 200 AND height >= 100',
	'host=127.0.0.1' => 'false',
	'host=nosuch.example' => 'false',
	'since=2000-01-01T00:00:00Z&until=2100-01-01T00:00:00Z' => 'true',
	'since=2100-01-01T00:00:00Z' => 'false',
	'host=%27%3B%20DROP%20TABLE%20images%3B--' => 'false',
	'format=%25' => 'false',);
for my $q (sort keys %count)
{
	my $want = $p->safe_psql('postgres', "SELECT count(*) FROM images WHERE session_id = $sid AND ($count{$q})");
	$r = req($ap, 'GET', "/api/images?session=$sid&limit=1000&$q", op => '/api/images');
	is($r->{code} . ' ' . scalar(@{ $r->{json}{images} // [] }), "200 $want", "GET /api/images?$q: $want images");
}
is($p->safe_psql('postgres', 'SELECT count(*) > 0 FROM images'), 't', 'the hostile host filter ran nothing');

my ($id, $sha, $size, $ctype, $fmt) = split /\|/, $p->safe_psql('postgres',
	"SELECT id, sha256, file_size, content_type, format FROM images WHERE session_id = $sid AND format = 'png' "
	  . 'AND width > 100 AND height > 100 ORDER BY file_size DESC LIMIT 1');
$r = req($ap, 'GET', "/api/images/$id", op => '/api/images/{id}');
is($r->{code} . ' ' . $r->{json}{image}{sha256}, "200 $sha", 'GET /api/images/ID: the row');

# --- content: bytes, ETag, Range, If-None-Match ---
$r = req($ap, 'GET', "/api/images/$id/content", op => '/api/images/{id}/content');
is($r->{code}, '200', 'GET /api/images/ID/content: 200');
is(Digest::SHA::sha256_hex($r->{body}), $sha, '... bytes whose sha256 is the row\'s');
is($r->{headers}{etag}, "\"$sha\"", '... ETag: the sha256');
is($r->{headers}{'content-type'}, $ctype, "... the stored Content-Type ($ctype)");
is($r->{headers}{'x-content-type-options'}, 'nosniff', '... nosniff');
like($r->{headers}{'content-security-policy'} // '', qr/sandbox/, '... a sandboxing CSP');
my $whole = $r->{body};
$r = req($ap, 'GET', "/api/images/$id/content", op => '/api/images/{id}/content', headers => ['Range: bytes=10-19']);
is($r->{code} . ' ' . $r->{headers}{'content-range'}, "206 bytes 10-19/$size", 'Range: bytes=10-19: 206');
is($r->{body}, substr($whole, 10, 10), '... those ten bytes');
$r = req($ap, 'GET', "/api/images/$id/content", op => '/api/images/{id}/content', headers => ["Range: bytes=$size-"]);
is($r->{code}, '416', 'a range past the end: 416');
$r = req($ap, 'GET', "/api/images/$id/content", op => '/api/images/{id}/content', headers => ["If-None-Match: \"$sha\""]);
is($r->{code} . ' ' . length($r->{body}), '304 0', 'If-None-Match with the ETag: 304, no body');
$r = req($ap, 'HEAD', "/api/images/$id/content", op => '/api/images/{id}/content');
is($r->{code} . ' ' . $r->{headers}{'content-length'}, "200 $size", 'HEAD: 200 with the length');
# The standby's agent has it too, once file sync has brought it.
my $ok = 0;
for (1 .. 100)
{
	$r = req($as, 'GET', "/api/images/$id/content", op => '/api/images/{id}/content');
	$ok = 1, last if $r->{code} eq '200';
	select undef, undef, undef, 0.1;
}
ok($ok && Digest::SHA::sha256_hex($r->{body}) eq $sha, 'the standby\'s agent serves the same bytes');

# --- thumbnails ---
# dimensions($bytes): (type, width, height) of a PNG or a JPEG.
sub dimensions
{
	my ($b) = @_;
	return ('png', unpack('NN', substr($b, 16, 8))) if substr($b, 0, 8) eq "\x89PNG\r\n\x1a\n";
	return ('none') unless substr($b, 0, 2) eq "\xff\xd8";
	my $i = 2;
	while ($i + 9 < length $b)
	{
		my ($marker, $len) = unpack('xCn', substr($b, $i, 4));
		if ($marker >= 0xc0 && $marker <= 0xcf && $marker != 0xc4 && $marker != 0xc8 && $marker != 0xcc)
		{
			my ($h, $w) = unpack('nn', substr($b, $i + 5, 4));
			return ('jpeg', $w, $h);
		}
		$i += 2 + $len;
	}
	return ('jpeg?');
}
my ($w, $h) = split /\|/, $p->safe_psql('postgres', "SELECT width, height FROM images WHERE id = $id");
for my $sz (64, 128)
{
	$r = req($ap, 'GET', "/api/images/$id/thumbnail?size=$sz", op => '/api/images/{id}/thumbnail');
	my ($type, $tw, $th) = dimensions($r->{body});
	is($r->{code}, '200', "thumbnail size=$sz: 200");
	is(($w >= $h ? $tw : $th), $sz, "... its longer side is $sz ($tw x $th from $w x $h, a $type)");
	ok(abs($tw / $th - $w / $h) < 0.05, '... the aspect kept');
	like($r->{headers}{'content-type'}, qr{^image/(png|jpeg)$}, "... $r->{headers}{'content-type'}");
	is($r->{headers}{etag}, "\"$sha-$sz\"", '... ETag: sha256-size');
}
my $first = req($ap, 'GET', "/api/images/$id/thumbnail?size=64", op => '/api/images/{id}/thumbnail');
my @cached = glob("$ap->{store}/.thumbnails/64/*/$sha.*");
is(scalar @cached, 1, 'the thumbnail is kept in the store (.thumbnails/64/..)');
my $mtime = (stat $cached[0])[9];
$r = req($ap, 'GET', "/api/images/$id/thumbnail?size=64", op => '/api/images/{id}/thumbnail');
ok($r->{body} eq $first->{body} && (stat $cached[0])[9] == $mtime, '... and served from there again');
$r = req($ap, 'GET', "/api/images/$id/thumbnail", op => '/api/images/{id}/thumbnail');
is((dimensions($r->{body}))[ $w >= $h ? 1 : 2 ], 256, 'no size: the first size of 256 or more');
$r = req($ap, 'GET', "/api/images/$id/thumbnail?size=100", op => '/api/images/{id}/thumbnail');
is($r->{code} . ' ' . ($r->{json}{error} // ''), '400 bad_parameter', 'a size not configured: 400');
is_deeply($r->{json}{sizes}, [ 64, 128, 256 ], '... listing the sizes');
# Many at once, different images and sizes: all answered, all images.
my @some = split /\n/, $p->safe_psql('postgres',
	"SELECT id FROM images WHERE session_id = $sid AND format IN ('png', 'jpeg', 'gif') ORDER BY id LIMIT 24");
my @par = ('curl', '-sS', '-Z', '--parallel-max', '24', '--cacert', $pki->{ca}, '-H', "Authorization: Bearer $pki->{token}",
	'-w', '%{http_code} %{content_type}\n', map { ('-o', '/dev/null', "$ap->{url}/api/images/$_/thumbnail?size=128") } @some);
my ($pout, $perr) = ('', '');
IPC::Run::run(\@par, '>', \$pout, '2>', \$perr);
my @codes = split /\n/, $pout;
is(scalar(grep { m{^200 image/(png|jpeg)} } @codes), scalar(@some),
	scalar(@some) . ' thumbnails asked for at once: every one 200 and an image') or diag $pout, $perr;

# --- the cluster's status and the standby ---
$r = req($as, 'GET', '/api/ha-status', op => '/api/ha-status');
is($r->{code} . ' ' . scalar(@{ $r->{json}{nodes} }), '200 2', 'GET /api/ha-status on the standby: both nodes');
$r = req($as, 'GET', "/api/images/$id", op => '/api/images/{id}');
is($r->{code}, '200', 'the standby answers reads');
$r = req($as, 'POST', '/api/crawls', token => 'operate', op => '/api/crawls', body => encode_json({ seeds => ["$web->{base}/"] }));
is($r->{code} . ' ' . ($r->{json}{error} // '') . ' ' . ($r->{json}{sqlstate} // ''), '503 read_only_node 25006',
	'POST /api/crawls on the standby: 503 read_only_node (SQLSTATE 25006)');
ok($r->{headers}{'retry-after'}, '... with Retry-After');

# --- the dashboard and the routes it reads besides those above ---
$r = req($ap, 'GET', '/', token => 'none', op => '/');
is($r->{code}, '200', 'GET / (the dashboard) without a token: 200');
like($r->{headers}{'content-type'} // '', qr{^text/html; charset=utf-8$}, '... an HTML page');
like($r->{headers}{'content-security-policy'} // '', qr/^default-src 'self'; script-src 'sha256-[A-Za-z0-9+\/]{43}='; style-src 'sha256-/,
	'... allowing its own inline script and style by hash');
like($r->{body}, qr{<title>crawler_ha dashboard</title>}, '... the dashboard');
$r = req($ap, 'GET', '/?x=1', token => 'none', op => '/');
is($r->{code} . ' ' . $r->{json}{error}, '400 unknown_parameter', 'GET /?x=1: 400 unknown_parameter');
$r = req($ap, 'GET', '/api/events?limit=2', op => '/api/events');
is($r->{code} . ' ' . scalar(@{ $r->{json}{events} // [] }), '200 2', 'GET /api/events?limit=2 on the application port: two events');
my $ha_events = req({ url => $ap->{ha_url} }, 'GET', '/api/events?limit=2');
is($r->{body}, $ha_events->{body}, '... exactly what the HA port answers');
my $next = req($ap, 'GET', "/api/events?limit=2&since=$r->{json}{next_since}", op => '/api/events');
ok($next->{code} eq '200' && !grep({ $_->{id} <= $r->{json}{events}[1]{id} } @{ $next->{json}{events} }),
	'... and since=next_since gives the next page (' . scalar(@{ $next->{json}{events} // [] }) . ' events)');
$r = req($ap, 'GET', '/api/events?limit=1001', op => '/api/events');
is($r->{code} . ' ' . $r->{json}{error}, '400 bad_parameter', 'GET /api/events?limit=1001: 400 bad_parameter');
$r = req($ap, 'GET', '/api/alerts', op => '/api/alerts');
is($r->{code} . ' ' . ref($r->{json}{alerts}), '200 ARRAY', 'GET /api/alerts: ha_alerts()\'s rows');
$r = req($ap, 'GET', '/api/lag-history', op => '/api/lag-history');
ok($r->{code} eq '200' && @{ $r->{json}{samples} } && defined $r->{json}{samples}[-1]{lag_bytes},
	'GET /api/lag-history on the primary: samples with the lag measured');
$r = req($as, 'GET', '/api/lag-history', op => '/api/lag-history');
# The newest sample: the history is an hour of this node's view, and a
# node counts as primary for a moment before ha_setup() makes it a standby.
ok($r->{code} eq '200' && @{ $r->{json}{samples} } && !defined $r->{json}{samples}[-1]{lag_bytes},
	'... on the standby: its newest sample without a lag (it is measured on the primary)');

# --- wrong callers ---
$r = req($ap, 'POST', '/api/crawls', token => 'none', op => '/api/crawls', body => '{"seeds": ["http://x.example/"]}');
is($r->{code}, '401', 'POST /api/crawls without a token: 401');
$r = req($ap, 'POST', '/api/crawls', token => 'read', op => '/api/crawls', body => '{"seeds": ["http://x.example/"]}');
is($r->{code} . ' ' . $r->{json}{error}, '403 insufficient_scope', '... with a read token: 403 insufficient_scope');
$r = req($ap, 'POST', '/api/crawls', op => '/api/crawls', body => '{"seeds": ["http://x.example/"]}');
is($r->{code}, '403', '... with the agents\' shared token: 403 (it stores blobs, it does not start crawls)');
$r = req($ap, 'POST', "/api/crawls/$sid/stop", token => 'read', op => '/api/crawls/{id}/stop');
is($r->{code}, '403', 'POST /api/crawls/ID/stop with a read token: 403');
is($p->safe_psql('postgres', 'SELECT count(*) FROM crawl_sessions WHERE seeds = ARRAY[\'http://x.example/\']'), '0',
	'... and none of them started a crawl');
$r = req($ap, 'DELETE', '/api/crawls', op => '/api/crawls');
is($r->{code} . ' ' . ($r->{headers}{allow} // ''), '405 GET, HEAD, POST', 'DELETE /api/crawls: 405 with Allow');
$r = req($ap, 'GET', '/api/nothing-here');
is($r->{code} . ' ' . $r->{json}{error}, '404 not_found', 'an unknown route: 404 not_found');

# --- bad input: 4xx with a stable code, never 500 ---
my @bad = (
	[ 'GET', '/api/images/abc', undef, '/api/images/{id}', '400 bad_id' ],
	[ 'GET', '/api/images/0', undef, '/api/images/{id}', '400 bad_id' ],
	[ 'GET', '/api/images/99999999999999999999', undef, '/api/images/{id}', '400 bad_id' ],
	[ 'GET', '/api/images/-1', undef, '/api/images/{id}', '400 bad_id' ],
	[ 'GET', '/api/images/9223372036854775807', undef, '/api/images/{id}', '404 not_found' ],
	[ 'GET', '/api/images/9223372036854775807/content', undef, '/api/images/{id}/content', '404 not_found' ],
	[ 'GET', '/api/images/9223372036854775807/thumbnail', undef, '/api/images/{id}/thumbnail', '404 not_found' ],
	[ 'GET', '/api/crawls/9223372036854775807', undef, '/api/crawls/{id}', '404 not_found' ],
	[ 'POST', '/api/crawls/9223372036854775807/stop', undef, '/api/crawls/{id}/stop', '404 not_found' ],
	[ 'GET', '/api/images?limit=100000', undef, '/api/images', '400 bad_parameter' ],
	[ 'GET', '/api/images?limit=0', undef, '/api/images', '400 bad_parameter' ],
	[ 'GET', '/api/images?limit=abc', undef, '/api/images', '400 bad_parameter' ],
	[ 'GET', '/api/images?session=1e9', undef, '/api/images', '400 bad_parameter' ],
	[ 'GET', '/api/images?min_bytes=-1', undef, '/api/images', '400 bad_parameter' ],
	[ 'GET', '/api/images?after=99999999999999999999', undef, '/api/images', '400 bad_parameter' ],
	[ 'GET', '/api/images?since=yesterday-ish', undef, '/api/images', '400 bad_parameter' ],
	[ 'GET', '/api/images?host=' . ('h' x 300), undef, '/api/images', '400 bad_parameter' ],
	[ 'GET', '/api/images?colour=red', undef, '/api/images', '400 unknown_parameter' ],
	[ 'GET', '/api/images?limit=1&limit=2', undef, '/api/images', '400 bad_query' ],
	[ 'GET', '/api/images?host=%00', undef, '/api/images', '400 bad_query' ],
	[ 'GET', '/api/crawls?limit=1001', undef, '/api/crawls', '400 bad_parameter' ],
	[ 'GET', '/api/crawls/1?x=1', undef, '/api/crawls/{id}', '400 unknown_parameter' ],
	[ 'POST', '/api/crawls', '[1', '/api/crawls', '400 bad_body' ],
	[ 'POST', '/api/crawls', '{}', '/api/crawls', '400 bad_body' ],
	[ 'POST', '/api/crawls', '{"seeds": "http://a.example/"}', '/api/crawls', '400 bad_body' ],
	[ 'POST', '/api/crawls', '{"seeds": [1, 2]}', '/api/crawls', '400 bad_body' ],
	[ 'POST', '/api/crawls', '{"seeds": ["http://a.example/"], "drop": 1}', '/api/crawls', '400 bad_body' ],
	[ 'POST', '/api/crawls', '{"seeds": ["http://a.example/"], "options": 5}', '/api/crawls', '400 bad_body' ],
	[ 'POST', '/api/crawls', '{"seeds": []}', '/api/crawls', '400 bad_parameter' ],
	[ 'POST', '/api/crawls', '{"seeds": ["javascript:alert(1)"]}', '/api/crawls', '400 bad_parameter' ],
	[ 'POST', '/api/crawls', '{"seeds": ["http://a.example/\u0000"]}', '/api/crawls', '400 bad_parameter' ],
	[ 'POST', '/api/crawls', '{"seeds": ["http://a.example/"], "options": {"max_depth": "deep"}}', '/api/crawls', '400 bad_parameter' ],
	[ 'POST', '/api/crawls', '{"seeds": ["http://a.example/"], "options": {"no_such_option": 1}}', '/api/crawls', '400 bad_parameter' ],
	[ 'POST', '/api/crawls', '{"seeds": ["http://' . ('a' x 3000) . '.example/"]}', '/api/crawls', '400 bad_parameter' ],
	[ 'POST', '/api/crawls', '{"seeds": [' . join(',', map { "\"http://h$_.example/\"" } 1 .. 10001) . ']}', '/api/crawls', '400 bad_parameter' ],
	[ 'POST', '/api/crawls', '{"seeds": ["' . ('x' x (5 << 20)) . '"]}', '/api/crawls', '413 body_too_large' ],
	[ 'POST', "/api/crawls/$sid/stop", '{"now": true}', '/api/crawls/{id}/stop', '400 bad_body' ],);
for my $b (@bad)
{
	my ($m, $route, $body, $op, $want) = @$b;
	$r = req($ap, $m, $route, token => 'operate', op => $op, (defined $body ? (body => $body) : ()));
	my $got = $r->{code} . ' ' . ($r->{json}{error} // '');
	is($got, $want, "$m " . substr($route, 0, 60) . (defined $body ? ' ' . substr($body, 0, 60) : '') . ": $want"
		  . ($r->{json}{sqlstate} ? " (SQLSTATE $r->{json}{sqlstate})" : ''));
}
is($p->safe_psql('postgres', "SELECT count(*) FROM crawl_sessions WHERE id > $sid2"), '0', 'no bad request started a crawl');

# --- the blob routes of the same port, against the document too ---
$r = req($ap, 'GET', "/api/blobs/$sha", op => '/api/blobs/{name}');
is($r->{code}, '200', 'GET /api/blobs/SHA256: 200');
$r = req($ap, 'PUT', "/api/blobs/$sha.png", op => '/api/blobs/{name}', body => 'x');
is($r->{code}, '200', 'PUT of a blob held already: 200');
$r = req($ap, 'POST', '/api/blobs/referenced', op => '/api/blobs/referenced', body => encode_json({ sha256 => [$sha] }));
is_deeply($r->{json}{referenced}, [$sha], 'POST /api/blobs/referenced');
$r = req($ap, 'POST', '/api/blobs/bundle', op => '/api/blobs/bundle', body => encode_json({ blobs => [$sha] }));
is($r->{code}, '200', 'POST /api/blobs/bundle: 200');
$r = req($ap, 'GET', '/api/file-sync/status', op => '/api/file-sync/status');
is($r->{code}, '200', 'GET /api/file-sync/status: 200');

# --- reads behind a token, and the rate limit, on the standby's agent ---
agent_stop($as);
agent_start($s, agent => $as, args => [ @args, '--read-token-required', '--rate-limit-per-second', '1',
	'--rate-limit-burst', '4' ]);
$r = req($as, 'GET', "/api/images/$id", token => 'none', op => '/api/images/{id}');
is($r->{code} . ' ' . $r->{json}{error}, '401 unauthorized', 'with read_token_required: GET /api/images/ID without a token: 401');
$r = req($as, 'GET', "/api/images/$id", token => 'read', op => '/api/images/{id}');
is($r->{code}, '200', '... with a read token: 200');
$r = req($as, 'GET', '/api/openapi.json', token => 'none');
is($r->{code}, '200', '... the document stays open');
my @limited = map { req($as, 'GET', "/api/images/$id/content", token => 'read', op => '/api/images/{id}/content') } 1 .. 4;
my ($limited) = grep { $_->{code} eq '429' } @limited;
ok($limited, 'over the rate limit: 429 (' . join(' ', map { $_->{code} } @limited) . ')');
ok($limited && $limited->{json}{error} eq 'rate_limited' && $limited->{headers}{'retry-after'} >= 1,
	'... rate_limited, with Retry-After');

# --- the document covers what is served, and this test covered the document ---
my @documented;
for my $path (sort keys %{ $doc->{json}{paths} })
{
	for my $m (qw(get put post delete patch))
	{
		my $documented = exists $doc->{json}{paths}{$path}{$m};
		push @documented, "$m $path" if $documented;
		next if $documented;
		(my $route = $path) =~ s/\{id\}/$id/;
		$route =~ s/\{name\}/$sha/;
		my $a = req($ap, uc $m, $route, token => 'admin');
		is($a->{code}, '405', "\U$m\E $path is not documented and not served: 405");
	}
}
is(join(' | ', grep { !$exercised{$_} } @documented), '', 'every documented operation was exercised and checked');
ok(!$exercised{errors}, 'every answer matched the document');

done_testing();
