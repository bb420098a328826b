# shellcheck shell=bash
# postfix.sh — the Postfix configuration that every private Postfix instance
# of the test bed shares: the test smarthost (start.sh) and the null clients
# that scenarios run beside relayq (t-10). Source it; it defines functions
# only.

# postfix_instance_cf DIR NAME MYHOSTNAME — the main.cf lines of a private,
# self-contained instance under DIR (its own config, queue, data and log
# directories, named NAME), relaying nothing locally and listening on
# loopback only. The caller appends what makes its instance different.
postfix_instance_cf() {
	cat <<-EOF
		compatibility_level = 3.6
		config_directory = $1/etc
		queue_directory = $1/queue
		data_directory = $1/data
		meta_directory = /etc/postfix
		multi_instance_name = $2
		syslog_name = $2
		maillog_file = $1/log/maillog
		maillog_file_prefixes = $1/log
		myhostname = $3
		mydomain = relayq.test
		myorigin = \$myhostname
		mydestination =
		local_recipient_maps =
		alias_maps =
		alias_database =
		inet_interfaces = loopback-only
		mynetworks = 127.0.0.0/8
		notify_classes =
		delay_warning_time = 0
	EOF
}

# postfix_master_services — the master.cf lines of Postfix's internal
# services (no listeners: the caller adds its own).
postfix_master_services() {
	cat <<-'EOT'
		pickup    unix  n       -       n       60      1       pickup
		cleanup   unix  n       -       n       -       0       cleanup
		qmgr      unix  n       -       n       300     1       qmgr
		tlsmgr    unix  -       -       n       1000?   1       tlsmgr
		rewrite   unix  -       -       n       -       -       trivial-rewrite
		bounce    unix  -       -       n       -       0       bounce
		defer     unix  -       -       n       -       0       bounce
		trace     unix  -       -       n       -       0       bounce
		verify    unix  -       -       n       -       1       verify
		flush     unix  n       -       n       1000?   0       flush
		proxymap  unix  -       -       n       -       -       proxymap
		proxywrite unix -       -       n       -       1       proxymap
		smtp      unix  -       -       n       -       -       smtp
		relay     unix  -       -       n       -       -       smtp
		showq     unix  n       -       n       -       -       showq
		error     unix  -       -       n       -       -       error
		retry     unix  -       -       n       -       -       error
		discard   unix  -       -       n       -       -       discard
		local     unix  -       n       n       -       -       local
		virtual   unix  -       n       n       -       -       virtual
		lmtp      unix  -       -       n       -       -       lmtp
		anvil     unix  -       -       n       -       1       anvil
		scache    unix  -       -       n       -       1       scache
		postlog   unix-dgram n  -       n       -       1       postlogd
	EOT
}
