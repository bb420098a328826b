package sendmail

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParseArgs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args []string
		want Flags
	}{
		{nil, Flags{}},
		{[]string{"bob@example.net"}, Flags{Recipients: []string{"bob@example.net"}}},
		{[]string{"-t"}, Flags{ExtractRecipients: true}},
		{[]string{"-ti"}, Flags{ExtractRecipients: true, IgnoreDots: true}},
		{[]string{"-i"}, Flags{IgnoreDots: true}},
		{[]string{"-oi"}, Flags{IgnoreDots: true}},
		{[]string{"-o", "i"}, Flags{IgnoreDots: true}},
		{[]string{"-f", "a@example.com"}, Flags{Sender: "a@example.com", SenderSet: true}},
		{[]string{"-fa@example.com"}, Flags{Sender: "a@example.com", SenderSet: true}},
		{[]string{"-r", "a@example.com"}, Flags{Sender: "a@example.com", SenderSet: true}},
		{[]string{"-f", "Alice <a@example.com>"}, Flags{Sender: "a@example.com", SenderSet: true}},
		{[]string{"-f", "<>"}, Flags{SenderSet: true}},
		{[]string{"-f", ""}, Flags{SenderSet: true}},
		{[]string{"-F", "Cron Daemon"}, Flags{FullName: "Cron Daemon", FullNameSet: true}},
		{[]string{"-FCronDaemon"}, Flags{FullName: "CronDaemon", FullNameSet: true}},
		{[]string{"-B", "8bitmime"}, Flags{BodyType: "8BITMIME"}},
		{[]string{"-B7BIT"}, Flags{BodyType: "7BIT"}},
		{[]string{"-N", "success,FAILURE,delay"}, Flags{Notify: "SUCCESS,FAILURE,DELAY"}},
		{[]string{"-N", "never"}, Flags{Notify: "NEVER"}},
		{[]string{"-R", "hdrs"}, Flags{Ret: "HDRS"}},
		{[]string{"-Rfull"}, Flags{Ret: "FULL"}},
		{[]string{"-V", "id.1+x"}, Flags{EnvID: "id.1+x"}},
		{[]string{"-v"}, Flags{Verbose: 1}},
		{[]string{"-vv"}, Flags{Verbose: 2}},
		{[]string{"-bm"}, Flags{Mode: ModeDeliver}},
		{[]string{"-bs"}, Flags{Mode: ModeSMTP}},
		{[]string{"-bp"}, Flags{Mode: ModeMailq}},
		{[]string{"-bi"}, Flags{Mode: ModeNewaliases}},
		{[]string{"-I"}, Flags{Mode: ModeNewaliases}},
		{[]string{"-q"}, Flags{Mode: ModeQueueRun}},
		{[]string{"-q30m"}, Flags{Mode: ModeQueueRun, QueueInterval: "30m"}},
		{[]string{"-qRexample.com"}, Flags{Mode: ModeQueueRun, Ignored: []string{"-qRexample.com (the whole queue is run)"}}},
		{[]string{"-odi"}, Flags{Delivery: DeliverInteractive}},
		{[]string{"-odb"}, Flags{Delivery: DeliverBackground}},
		{[]string{"-odq"}, Flags{Delivery: DeliverQueueOnly}},
		{[]string{"-oem"}, Flags{ErrorMode: "m"}},
		{[]string{"-oeq"}, Flags{ErrorMode: "q"}},
		{[]string{"-oA/etc/other-aliases"}, Flags{AliasFile: "/etc/other-aliases"}},
		{[]string{"-oAhash:/etc/aliases"}, Flags{AliasFile: "/etc/aliases"}},
		{[]string{"-om"}, Flags{Ignored: []string{"-om"}}},
		{[]string{"-C", "/etc/mail/sendmail.cf"}, Flags{Ignored: []string{"-C /etc/mail/sendmail.cf"}}},
		{[]string{"-L", "label"}, Flags{Ignored: []string{"-L label"}}},
		{[]string{"-X", "/tmp/log"}, Flags{Ignored: []string{"-X /tmp/log"}}},
		{[]string{"-G", "-U"}, Flags{Ignored: []string{"-G", "-U"}}},
		{[]string{"-Am"}, Flags{Ignored: []string{"-Am"}}},
		{[]string{"-h", "20"}, Flags{Ignored: []string{"-h 20"}}},
		{[]string{"-SMTPUTF8"}, Flags{SMTPUTF8: true}},
		{[]string{"--", "bob"}, Flags{Recipients: []string{"bob"}}},
		{[]string{"a@x.org, B <b@y.org>", "c"}, Flags{Recipients: []string{"a@x.org", "b@y.org", "c"}}},
		// cron's invocation (Debian cron, do_command.c).
		{[]string{"-FCronDaemon", "-i", "-B8BITMIME", "-oem", "root"},
			Flags{FullName: "CronDaemon", FullNameSet: true, IgnoreDots: true, BodyType: "8BITMIME", ErrorMode: "m", Recipients: []string{"root"}}},
		// PHP's default sendmail_path.
		{[]string{"-t", "-i"}, Flags{ExtractRecipients: true, IgnoreDots: true}},
		// bsd-mailx: sendmail -i -- rcpt.
		{[]string{"-i", "--", "bob@example.net"}, Flags{IgnoreDots: true, Recipients: []string{"bob@example.net"}}},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			got, err := ParseArgs(tc.args)
			if err != nil {
				t.Fatalf("ParseArgs(%q): %v", tc.args, err)
			}
			if !reflect.DeepEqual(*got, tc.want) {
				t.Errorf("ParseArgs(%q)\n got %+v\nwant %+v", tc.args, *got, tc.want)
			}
		})
	}
}

func TestParseArgsErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args []string
		want string // in the message
	}{
		{[]string{"-Z"}, "unknown option -Z"},
		{[]string{"-tZ"}, "unknown option -Z"},
		{[]string{"-f"}, "-f needs an argument"},
		{[]string{"-f", "a@x\r\nBcc: evil@x"}, "CR, LF or NUL"},
		{[]string{"-f", "a@x\x00"}, "CR, LF or NUL"},
		{[]string{"-f", "-oQ/tmp/ -X/var/www/x.php"}, "starts with '-'"},
		{[]string{"-f", "a@x.org, b@y.org"}, "more than one address"},
		{[]string{"-F", "Name\nBcc: evil@x"}, "CR, LF or NUL"},
		{[]string{"-N", "success\r\n"}, "CR, LF or NUL"},
		{[]string{"-N", "sometimes"}, "-N"},
		{[]string{"-N", "never,success"}, "never cannot be combined"},
		{[]string{"-V", "id\nx"}, "CR, LF or NUL"},
		{[]string{"-V", strings.Repeat("x", 101)}, "1 to 100"},
		{[]string{"-V", "idé"}, "US-ASCII"},
		{[]string{"-R", "all"}, "full or hdrs"},
		{[]string{"-B", "BINARYMIME"}, "7BIT or 8BITMIME"},
		{[]string{"-bd"}, "relayq serve"},
		{[]string{"-bt"}, "unsupported mode"},
		{[]string{"-odx"}, "delivery mode"},
		{[]string{"-oex"}, "error mode"},
		{[]string{"bob@example.net", "-f", "x@y"}, "starts with '-'"},
		{[]string{"--", "-oQ/tmp"}, "starts with '-'"},
		{[]string{"bob@x\r\nData"}, "CR, LF or NUL"},
		{[]string{"bob smith@example.net"}, "blank space"},
		{[]string{"<bob@example.net"}, "unterminated"},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			_, err := ParseArgs(tc.args)
			var ue *UsageError
			if !errors.As(err, &ue) {
				t.Fatalf("ParseArgs(%q) = %v, want a *UsageError", tc.args, err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ParseArgs(%q) error %q does not mention %q", tc.args, err, tc.want)
			}
		})
	}
}
