package rtmp

import (
	"bytes"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/peerscope/peerscope/media"
)

// The fuzz targets feed the server what a client might send after a plain
// handshake (gortmplib does not check C2, so the fuzzer need not find one):
// the commands, then media. The committed corpus holds recorded sessions
// (testdata/fuzz/FuzzConn, made by TestRecordSeeds) and the fuzzer's finds.
//
//	go test -run='^$' -fuzz=FuzzConn -fuzztime=60s ./media/rtmp/

// handshakeLen is C0 + C1 + C2.
const handshakeLen = 1 + 1536 + 1536

type discardSink struct{}

func (discardSink) Tracks([]media.Track) error { return nil }
func (discardSink) Sample(media.Sample) error  { return nil }

// memConn is a net.Conn that reads a fixed input and discards writes.
type memConn struct{ r io.Reader }

func (c *memConn) Read(p []byte) (int, error)       { return c.r.Read(p) }
func (c *memConn) Write(p []byte) (int, error)      { return len(p), nil }
func (c *memConn) Close() error                     { return nil }
func (c *memConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (c *memConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (c *memConn) SetDeadline(time.Time) error      { return nil }
func (c *memConn) SetReadDeadline(time.Time) error  { return nil }
func (c *memConn) SetWriteDeadline(time.Time) error { return nil }

func FuzzConn(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x14, 0x00, 0x00, 0x00, 0x00})
	srv, err := New(Config{
		Authorize: func(string) error { return nil },
		Publish:   func(string) (media.Sink, error) { return discardSink{}, nil },
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		f.Fatal(err)
	}
	prefix := append([]byte{3}, make([]byte, handshakeLen-1)...)
	f.Fuzz(func(t *testing.T, data []byte) {
		in := io.MultiReader(bytes.NewReader(prefix), bytes.NewReader(data))
		srv.serveConn(&memConn{r: in}, srv.log) // must return, never panic
	})
}

func FuzzStreamKey(f *testing.F) {
	for _, s := range []string{"/live/key", "/live/", "/live", "/", "", "/live/a/b", "/other/key", "/live/k%20ey", "/live/\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, path string) {
		key, err := StreamKey(&url.URL{Path: path}, "live")
		if err != nil {
			return
		}
		if key == "" || strings.ContainsAny(key, "/ \x00") || len(key) > 256 {
			t.Fatalf("StreamKey(%q) = %q", path, key)
		}
		if "/live/"+key != path && "live/"+key != path {
			t.Fatalf("StreamKey(%q) = %q", path, key)
		}
	})
}

// TestRecordSeeds records what real clients send (the Go client here, and
// ffmpeg when installed) as FuzzConn seeds. It runs only when asked:
//
//	PEERSCOPE_RECORD_SEEDS=1 go test -run TestRecordSeeds ./media/rtmp/
func TestRecordSeeds(t *testing.T) {
	if os.Getenv("PEERSCOPE_RECORD_SEEDS") == "" {
		t.Skip("set PEERSCOPE_RECORD_SEEDS=1 to record FuzzConn seeds")
	}
	record := func(name string, publish func(url string)) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		got := make(chan []byte, 1)
		go func() {
			c, err := ln.Accept()
			if err != nil {
				got <- nil
				return
			}
			defer c.Close()
			// Play a server that admits everything by running ours on a
			// tee of the connection.
			var buf bytes.Buffer
			srv, _ := New(Config{
				Authorize: func(string) error { return nil },
				Publish:   func(string) (media.Sink, error) { return discardSink{}, nil },
				Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
			})
			srv.serveConn(&teeConn{Conn: c, buf: &buf}, srv.log)
			got <- buf.Bytes()
		}()
		publish("rtmp://" + ln.Addr().String() + "/live/seed")
		data := <-got
		if len(data) <= handshakeLen {
			t.Fatalf("%s: recorded only %d bytes", name, len(data))
		}
		data = data[handshakeLen:]
		if len(data) > 64<<10 {
			data = data[:64<<10] // the first seconds: commands, config, some frames
		}
		dir := filepath.Join("testdata", "fuzz", "FuzzConn")
		os.MkdirAll(dir, 0o755)
		body := "go test fuzz v1\n[]byte(" + strconv.Quote(string(data)) + ")\n"
		if err := os.WriteFile(filepath.Join(dir, "seed-"+name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	f := loadFixture(t)
	record("goclient", func(u string) {
		p, err := dialH264AAC(ctxT(t), f, u)
		if err != nil {
			t.Fatal(err)
		}
		p.send(f, 0, 3*time.Second)
		p.c.Close()
	})
	if ffmpeg, err := lookFFmpeg(); err == nil {
		record("ffmpeg", func(u string) {
			args := ffmpegArgs(u, 3*time.Second)
			for i, a := range args {
				if a == "-re" {
					args = append(args[:i], args[i+1:]...)
					break
				}
			}
			if out, err := execCommand(ffmpeg, args...).CombinedOutput(); err != nil {
				t.Fatalf("ffmpeg: %v: %s", err, out)
			}
		})
	}
}

type teeConn struct {
	net.Conn
	buf *bytes.Buffer
}

func (c *teeConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.buf.Write(p[:n])
	return n, err
}
