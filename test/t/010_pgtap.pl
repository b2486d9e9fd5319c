# pgTAP suites (test/pgtap/*.sql) against a real server with the extension,
# run through pg_prove. Each file runs in a transaction and rolls back.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use CrawlerHA::Test qw(new_node);

my $node = new_node('pgtap');
$node->safe_psql('postgres', 'CREATE EXTENSION pgtap');

my @files = sort glob("$ENV{TESTDIR}/pgtap/*.sql");
ok(@files >= 3, 'pgTAP files found: ' . scalar(@files));

for my $file (@files)
{
	my ($out, $err) = ('', '');
	my $ok = IPC::Run::run(
		[
			'pg_prove', '--verbose', '--failures',
			'-h', $node->host, '-p', $node->port, '-d', 'postgres', '-U', $ENV{USER} // scalar(getpwuid($<)),
			$file
		],
		'>', \$out, '2>', \$err);
	note($out);
	diag($err) if $err ne '';
	my ($tests) = $out =~ /Tests=(\d+)/;
	ok($ok && defined $tests && $tests > 0,
		"pg_prove " . ($file =~ s{.*/}{}r) . " passed (" . ($tests // 0) . " tests)");
}

$node->stop;
done_testing();
