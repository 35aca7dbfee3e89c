// Command fiber-peer is the "original stack" comparison peer for the NeoLight
// dashboard benchmarks: Go + Fiber v2, written the way the original Go
// dashboard was built.
//
//   - an in-memory cache (map[string]interface{}) behind a sync.RWMutex
//   - JSON encoded per request with encoding/json (Fiber's default encoder)
//   - POST handlers enqueue on a buffered channel of 100 and answer 200 once
//     the message is queued (503 when the queue is full); a background
//     goroutine applies each message (top-level key merge, CONTRACT §3) under
//     the lock and persists the merged document with a plain os.WriteFile
//   - panic recovery middleware, JSON error bodies {"error": "...", "code": N}
//   - one JSON access-log line per request to $NEOLIGHT_HOME/logs/dashboard_go.log
//     through a buffered writer flushed once a second and at shutdown
//
// It is a benchmark peer, not the product: it deliberately keeps the original
// design's durability (see persist) and does not serve the file-backed routes.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/recover"
)

const (
	version   = "1.0.0-fiber-peer"
	queueSize = 100
)

var startTime = time.Now()

// ---------------------------------------------------------------------------
// configuration

type config struct {
	port        string
	home        string
	metricsPath string
	logPath     string
}

func getenv(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func loadConfig() config {
	homeDir, _ := os.UserHomeDir()
	home := getenv("NEOLIGHT_HOME", filepath.Join(homeDir, "neolight"))
	return config{
		port:        getenv("NEOLIGHT_DASHBOARD_PORT", "8100"),
		home:        home,
		metricsPath: getenv("METRICS_PATH", filepath.Join(home, "state", "meta_metrics.json")),
		logPath:     getenv("LOG_PATH", filepath.Join(home, "logs", "dashboard_go.log")),
	}
}

// ---------------------------------------------------------------------------
// structured JSON logger (one object per line, buffered)

type logger struct {
	mu sync.Mutex
	f  *os.File
	w  *bufio.Writer
}

func newLogger(path string) (*logger, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	l := &logger{f: f, w: bufio.NewWriterSize(f, 64*1024)}
	go func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for range t.C {
			l.Flush()
		}
	}()
	return l, nil
}

func (l *logger) log(level, message string, fields map[string]interface{}) {
	entry := make(map[string]interface{}, len(fields)+3)
	for k, v := range fields {
		entry[k] = v
	}
	entry["timestamp"] = time.Now().UTC().Format(time.RFC3339)
	entry["level"] = level
	entry["message"] = message
	line, err := json.Marshal(entry)
	if err != nil {
		line = []byte(`{"level":"ERROR","message":"Log encoding failed"}`)
	}
	l.mu.Lock()
	l.w.Write(line)
	l.w.WriteByte('\n')
	l.mu.Unlock()
}

func (l *logger) Info(msg string, f map[string]interface{})  { l.log("INFO", msg, f) }
func (l *logger) Warn(msg string, f map[string]interface{})  { l.log("WARN", msg, f) }
func (l *logger) Error(msg string, f map[string]interface{}) { l.log("ERROR", msg, f) }

func (l *logger) Flush() {
	l.mu.Lock()
	l.w.Flush()
	l.mu.Unlock()
}

func (l *logger) Close() {
	l.Flush()
	l.f.Close()
}

// ---------------------------------------------------------------------------
// the meta-metrics cache

type message struct {
	kind string // "meta" or "atlas"
	body map[string]interface{}
}

type store struct {
	mu       sync.RWMutex
	doc      map[string]interface{}
	cachedAt *time.Time // when the last update was applied; nil before any
	restored bool       // doc came from the persisted file

	queue chan message
	path  string
	log   *logger
}

func defaultDocument() map[string]interface{} {
	return map[string]interface{}{
		"timestamp":    time.Now().UTC().Format(time.RFC3339),
		"per_agent":    map[string]interface{}{},
		"per_strategy": map[string]interface{}{},
		"guardian": map[string]interface{}{
			"is_paused": false,
			"drawdown":  0,
			"reason":    "Normal operation",
		},
		"breakers": map[string]interface{}{
			"quote_state": "CLOSED",
			"trade_state": "CLOSED",
		},
		"mode": "TEST_MODE",
		"summary": map[string]interface{}{
			"total_agents":     0,
			"total_strategies": 0,
		},
	}
}

func newStore(path string, l *logger) *store {
	s := &store{
		doc:   defaultDocument(),
		queue: make(chan message, queueSize),
		path:  path,
		log:   l,
	}
	// Persisted state, when present, wins over the default.
	if data, err := os.ReadFile(path); err == nil {
		var persisted map[string]interface{}
		if err := json.Unmarshal(data, &persisted); err == nil && persisted != nil {
			for k, v := range persisted {
				s.doc[k] = v
			}
			s.restored = true
			l.Info("State restored", map[string]interface{}{"path": path, "keys": len(persisted)})
		} else {
			l.Warn("Persisted state unreadable, using default", map[string]interface{}{"path": path})
		}
	}
	return s
}

// enqueue hands a message to the worker; false when the queue is full.
func (s *store) enqueue(m message) bool {
	select {
	case s.queue <- m:
		return true
	default:
		return false
	}
}

// worker applies queued messages one at a time, in the order they were
// accepted (CONTRACT §3: updates are applied in acceptance order).
func (s *store) worker(done chan<- struct{}) {
	for m := range s.queue {
		s.process(m)
	}
	close(done)
}

func (s *store) process(m message) {
	now := time.Now().UTC()
	s.mu.Lock()
	switch m.kind {
	case "atlas":
		s.doc["atlas"] = m.body
	default:
		// Merge rule: replace exactly the top-level keys carried by the body.
		for k, v := range m.body {
			s.doc[k] = v
		}
	}
	s.cachedAt = &now
	snapshot, err := json.Marshal(s.doc)
	s.mu.Unlock()

	if m.kind == "meta" {
		agents := 0
		if pa, ok := m.body["per_agent"].(map[string]interface{}); ok {
			agents = len(pa)
		}
		s.log.Info("Telemetry processed", map[string]interface{}{"agents": agents})
	} else {
		s.log.Info("Atlas update processed", nil)
	}
	if err != nil {
		s.log.Error("State encoding failed", map[string]interface{}{"error": err.Error()})
		return
	}
	s.persist(snapshot)
}

// persist writes the merged document the way the original did: a plain
// os.WriteFile (truncate + write in place), no temp file + rename and no
// fsync. DURABILITY: the 200 was already sent when the message was queued, so
// an accepted update that is still in the channel is lost on a crash, and a
// written one sits in the page cache until the kernel flushes it; a crash or
// power loss mid-write can leave the file empty or truncated.
func (s *store) persist(snapshot []byte) {
	if err := os.WriteFile(s.path, snapshot, 0o644); err != nil {
		s.log.Error("State write failed", map[string]interface{}{"path": s.path, "error": err.Error()})
	}
}

// view returns the served document: the merged state plus cache_timestamp.
func (s *store) view() map[string]interface{} {
	s.mu.RLock()
	out := make(map[string]interface{}, len(s.doc)+1)
	for k, v := range s.doc {
		out[k] = v
	}
	cachedAt := s.cachedAt
	restored := s.restored
	s.mu.RUnlock()

	if cachedAt == nil {
		out["cache_timestamp"] = nil
		if !restored {
			// Before any data the default's timestamp is "now".
			out["timestamp"] = time.Now().UTC().Format(time.RFC3339)
		}
	} else {
		out["cache_timestamp"] = cachedAt.Format(time.RFC3339)
	}
	return out
}

// ---------------------------------------------------------------------------
// HTTP

func uptimeString() string {
	d := time.Since(startTime)
	h := int(d.Hours())
	m := int(d.Minutes()) % 60
	return fmt.Sprintf("%dh%dm", h, m)
}

func nowRFC3339() string { return time.Now().UTC().Format(time.RFC3339) }

func jsonError(c *fiber.Ctx, code int, msg string) error {
	return c.Status(code).JSON(fiber.Map{"error": msg, "code": code})
}

// errorHandler turns any error into the contract's error shape.
func errorHandler(c *fiber.Ctx, err error) error {
	var fe *fiber.Error
	if errors.As(err, &fe) {
		msg := fe.Message
		if fe.Code == fiber.StatusNotFound {
			msg = "Not Found"
		}
		return jsonError(c, fe.Code, msg)
	}
	return jsonError(c, fiber.StatusInternalServerError, "Internal Server Error")
}

// processCPUSeconds reads utime+stime from /proc/self/stat.
func processCPUSeconds() float64 {
	data, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return 0
	}
	s := string(data)
	// Fields after the ")" that closes the command name; utime and stime are
	// fields 14 and 15 overall, i.e. 11 and 12 after the state field.
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100.0 // USER_HZ is 100 on Linux
}

func diskUsedPercent(path string) float64 {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return 0
	}
	total := float64(st.Blocks) * float64(st.Bsize)
	free := float64(st.Bavail) * float64(st.Bsize)
	if total == 0 {
		return 0
	}
	return round2((total - free) / total * 100)
}

func round2(f float64) float64 {
	return float64(int64(f*100+0.5)) / 100
}

func newApp(cfg config, s *store, l *logger) *fiber.App {
	app := fiber.New(fiber.Config{
		DisableStartupMessage: true,
		ErrorHandler:          errorHandler,
		AppName:               "neolight-dashboard-fiber-peer",
	})

	// Access log: one JSON line per request. Errors are rendered here so the
	// logged status is the one sent.
	app.Use(func(c *fiber.Ctx) error {
		start := time.Now()
		err := c.Next()
		if err != nil {
			if herr := errorHandler(c, err); herr != nil {
				c.Status(fiber.StatusInternalServerError)
			}
		}
		l.Info("HTTP request", map[string]interface{}{
			"method":      c.Method(),
			"path":        c.Path(),
			"status":      c.Response().StatusCode(),
			"duration_ms": float64(time.Since(start).Microseconds()) / 1000.0,
			"ip":          c.IP(),
		})
		return nil
	})

	app.Use(recover.New(recover.Config{
		EnableStackTrace: true,
		StackTraceHandler: func(c *fiber.Ctx, e interface{}) {
			l.Error("Panic recovered", map[string]interface{}{
				"path":  c.Path(),
				"panic": fmt.Sprint(e),
				"stack": string(debug.Stack()),
			})
		},
	}))

	app.Get("/health", func(c *fiber.Ctx) error {
		return c.JSON(fiber.Map{
			"status":    "ok",
			"uptime":    uptimeString(),
			"version":   version,
			"timestamp": nowRFC3339(),
		})
	})

	app.Get("/meta/metrics", func(c *fiber.Ctx) error {
		return c.JSON(s.view())
	})

	post := func(kind string) fiber.Handler {
		return func(c *fiber.Ctx) error {
			var body map[string]interface{}
			if err := json.Unmarshal(c.Body(), &body); err != nil {
				return jsonError(c, fiber.StatusBadRequest, "Invalid JSON body")
			}
			if body == nil {
				return jsonError(c, fiber.StatusBadRequest, "Body must be a JSON object")
			}
			if !s.enqueue(message{kind: kind, body: body}) {
				l.Warn("Update queue full", map[string]interface{}{"kind": kind})
				return jsonError(c, fiber.StatusServiceUnavailable, "Update queue full, retry later")
			}
			return c.JSON(fiber.Map{"status": "ok", "timestamp": nowRFC3339()})
		}
	}
	app.Post("/meta/metrics", post("meta"))
	app.Post("/atlas/update", post("atlas"))

	app.Get("/status", func(c *fiber.Ctx) error {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		up := time.Since(startTime).Seconds()
		cpuPct := 0.0
		if up > 0 {
			cpuPct = round2(processCPUSeconds() / up * 100)
		}
		return c.JSON(fiber.Map{
			"system": fiber.Map{
				"cpu":    cpuPct,                                  // process CPU %, average since start
				"memory": round2(float64(ms.Sys) / (1024 * 1024)), // MiB obtained from the OS
				"disk":   diskUsedPercent(cfg.home),               // % used on NEOLIGHT_HOME's filesystem
				"uptime": uptimeString(),
			},
			"guardian": fiber.Map{"logs": fiber.Map{}, "agents": []string{}},
			"queue":    fiber.Map{"length": len(s.queue), "capacity": cap(s.queue)},
			"runtime": fiber.Map{
				"goroutines":     runtime.NumGoroutine(),
				"heap_alloc_mib": round2(float64(ms.HeapAlloc) / (1024 * 1024)),
				"uptime_seconds": round2(up),
			},
		})
	})

	// Anything unmatched: 404 in the contract's error shape.
	app.Use(func(c *fiber.Ctx) error {
		return jsonError(c, fiber.StatusNotFound, "Not Found")
	})

	return app
}

func main() {
	cfg := loadConfig()

	l, err := newLogger(cfg.logPath)
	if err != nil {
		fmt.Fprintf(os.Stderr, `{"level":"ERROR","message":"Cannot open log","error":%q}`+"\n", err.Error())
		os.Exit(1)
	}
	if err := os.MkdirAll(filepath.Dir(cfg.metricsPath), 0o755); err != nil {
		l.Error("Cannot create state directory", map[string]interface{}{"error": err.Error()})
	}

	s := newStore(cfg.metricsPath, l)
	workerDone := make(chan struct{})
	go s.worker(workerDone)

	app := newApp(cfg, s, l)

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		sig := <-sigs
		l.Info("Shutting down", map[string]interface{}{"signal": sig.String()})
		_ = app.ShutdownWithTimeout(5 * time.Second)
	}()

	addr := "127.0.0.1:" + cfg.port
	l.Info("Dashboard started", map[string]interface{}{"addr": addr, "version": version})
	if err := app.Listen(addr); err != nil {
		l.Error("Listen failed", map[string]interface{}{"addr": addr, "error": err.Error()})
		l.Close()
		os.Exit(1)
	}

	// Server stopped: no more producers. Apply what is still queued, then exit.
	close(s.queue)
	select {
	case <-workerDone:
	case <-time.After(5 * time.Second):
		l.Warn("Queue drain timed out", map[string]interface{}{"pending": len(s.queue)})
	}
	l.Info("Stopped", nil)
	l.Close()
}
