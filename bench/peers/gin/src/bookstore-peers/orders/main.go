// POST /v1/orders in Gin + pgx v4 (pgxpool), a peer of bookstore-orders for
// bench/peers.sh, with its semantics (orders/orders-api.c, orders-store.c):
//
//   - the book comes from our Books, GET {BOOKS_SERVICE_URL}/v1/books/{id},
//     over keep-alive HTTP; 404 from Books is 404 NOT_FOUND, 410 is 409
//     BOOK_NOT_ORDERABLE, a 5xx or no answer is 503 with Retry-After;
//   - the order snapshots title, author and price; total = price × quantity
//     in integer cents; the order and its outbox row are one statement, so
//     one transaction, in the orders schema of data/sql/orders/;
//   - with Idempotency-Key: the key is looked up first; a replay answers 201
//     with the same order and "Idempotent-Replayed: true" (no call to Books),
//     another body with the same key 409 IDEMPOTENCY_CONFLICT; a new key is
//     inserted with its order in the same statement (ON CONFLICT DO NOTHING),
//     and the loser of a race reads the winner's order;
//   - the answer has the shape and bytes of ours: money as JSON numbers with
//     two decimals, the order's columns in the same order.
//
// No circuit breaker, no relay to Redis (the outbox rows stay unsent, as
// they do for bookstore-orders in the benchmark, which runs without Redis).
//
// Environment: PORT, BIND_ADDRESS (default 127.0.0.1), DATABASE_URL,
// BOOKS_SERVICE_URL, POOL_SIZE (default 16), BOOKS_TIMEOUT_MS (default 2000),
// BOOKS_MAX_CONNECTIONS (default 64).
package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"mime"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"bookstore-peers/jsonfix"

	"github.com/gin-gonic/gin"
	"github.com/gin-gonic/gin/binding"
	"github.com/jackc/pgx/v4"
	"github.com/jackc/pgx/v4/pgxpool"
)

// The statements of orders/orders-store.c, as they are.
const orderColumns = `id, book_id, book_title, book_author, quantity, unit_price::text,
  total_price::text, status, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
  status_reason`

const insertOrder = `INSERT INTO orders (book_id, book_title, book_author, quantity, unit_price, total_price`

const withOutbox = `, x AS (INSERT INTO outbox (order_id, event_type) SELECT id, 'order.created' FROM o)
  SELECT ` + orderColumns + ` FROM o`

const createOrder = `WITH o AS (` + insertOrder + `) VALUES ($1::bigint, $2::text, $3::text,
  $4::integer, $5::numeric, $6::numeric) RETURNING *)` + withOutbox

const createOrderWithKey = `WITH k AS (INSERT INTO idempotency_keys (key, request_hash)
  VALUES ($7::text, $8::text) ON CONFLICT (key) DO NOTHING RETURNING key),
  o AS (` + insertOrder + `, idempotency_key) SELECT $1::bigint, $2::text, $3::text,
  $4::integer, $5::numeric, $6::numeric, k.key FROM k RETURNING *)` + withOutbox

const findKey = `SELECT k.request_hash, o.* FROM idempotency_keys k
  LEFT JOIN LATERAL (SELECT ` + orderColumns + ` FROM orders WHERE idempotency_key = k.key) o
  ON true WHERE k.key = $1::text`

const quantityMax = 10000

type orderInput struct {
	BookID   *int64 `json:"book_id" binding:"required,min=1"`
	Quantity *int64 `json:"quantity" binding:"required,min=1,max=10000"`
}

// order is the answer, its members in the order bookstore-orders writes them.
type order struct {
	ID           int64           `json:"id"`
	BookID       int64           `json:"book_id"`
	BookTitle    string          `json:"book_title"`
	BookAuthor   string          `json:"book_author"`
	Quantity     int64           `json:"quantity"`
	UnitPrice    json.RawMessage `json:"unit_price"`
	TotalPrice   json.RawMessage `json:"total_price"`
	Status       string          `json:"status"`
	CreatedAt    string          `json:"created_at"`
	StatusReason json.RawMessage `json:"status_reason,omitempty"` // only when failed
}

type apiError struct {
	Error   string `json:"error"`
	Message string `json:"message"`
}

// A failure with its HTTP answer.
type httpError struct {
	status     int
	code       string
	message    string
	retryAfter bool
}

func (e *httpError) Error() string { return e.message }

type book struct {
	Title  string `json:"title"`
	Author string `json:"author"`
	Price  string `json:"price"`
}

type server struct {
	pool     *pgxpool.Pool
	client   *http.Client
	booksURL string
}

// writeJSON: encoding/json without HTML escaping or the final newline, and
// escaped as bs-json-writer escapes (jsonfix).
func writeJSON(c *gin.Context, status int, v interface{}) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		c.AbortWithStatus(http.StatusInternalServerError)
		return
	}
	body := bytes.TrimSuffix(buf.Bytes(), []byte{'\n'})
	c.Data(status, "application/json", jsonfix.Rewrite(body, jsonfix.Writer))
}

func writeError(c *gin.Context, err error) {
	var he *httpError
	if !errors.As(err, &he) {
		log.Printf("%s %s: %v", c.Request.Method, c.Request.URL.Path, err)
		he = &httpError{http.StatusServiceUnavailable, "SERVICE_UNAVAILABLE", "database unavailable", true}
	}
	if he.retryAfter {
		c.Header("Retry-After", "1")
	}
	writeJSON(c, he.status, apiError{he.code, he.message})
}

// scanOrder reads the ten order columns; a NULL id (the LEFT JOIN of
// findKey found no order) gives ok false.
func scanOrder(row pgx.Row, before ...interface{}) (o order, ok bool, err error) {
	var id, bookID, quantity *int64
	var title, author, unit, total, status, created *string
	var reason *string
	dest := append(before, &id, &bookID, &title, &author, &quantity, &unit, &total, &status,
		&created, &reason)
	if err = row.Scan(dest...); err != nil || id == nil {
		return o, false, err
	}
	o = order{ID: *id, BookID: *bookID, BookTitle: *title, BookAuthor: *author,
		Quantity: *quantity, UnitPrice: json.RawMessage(*unit), TotalPrice: json.RawMessage(*total),
		Status: *status, CreatedAt: *created}
	if *status == "failed" {
		o.StatusReason = json.RawMessage("null")
		if reason != nil {
			o.StatusReason, _ = json.Marshal(*reason)
		}
	}
	return o, true, nil
}

// cents parses Books' price, "12.99" (a string with at most two decimals).
func cents(price string) (int64, bool) {
	whole, frac, _ := strings.Cut(price, ".")
	if whole == "" || len(frac) > 2 || strings.Trim(whole+frac, "0123456789") != "" {
		return 0, false
	}
	w, err := strconv.ParseInt(whole, 10, 64)
	if err != nil || w > 99999999 {
		return 0, false
	}
	f := int64(0)
	if frac != "" {
		f, _ = strconv.ParseInt((frac + "0")[:2], 10, 64)
	}
	return w*100 + f, true
}

func money(c int64) string { return fmt.Sprintf("%d.%02d", c/100, c%100) }

func (s *server) fetchBook(ctx context.Context, id int64, requestID string) (*book, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet,
		s.booksURL+"/v1/books/"+strconv.FormatInt(id, 10), nil)
	if err != nil {
		return nil, err
	}
	if requestID != "" {
		req.Header.Set("X-Request-ID", requestID)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, &httpError{http.StatusServiceUnavailable, "SERVICE_UNAVAILABLE",
			"books service unavailable: " + err.Error(), true}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body) // read to the end: the connection is reused
	switch {
	case err != nil:
		return nil, &httpError{http.StatusServiceUnavailable, "SERVICE_UNAVAILABLE",
			"books service unavailable: " + err.Error(), true}
	case resp.StatusCode == http.StatusNotFound:
		return nil, &httpError{http.StatusNotFound, "NOT_FOUND", fmt.Sprintf("book %d not found", id), false}
	case resp.StatusCode == http.StatusGone:
		return nil, &httpError{http.StatusConflict, "BOOK_NOT_ORDERABLE",
			fmt.Sprintf("book %d was deleted and cannot be ordered", id), false}
	case resp.StatusCode >= 500:
		return nil, &httpError{http.StatusServiceUnavailable, "SERVICE_UNAVAILABLE",
			fmt.Sprintf("books service unavailable: it answered %d", resp.StatusCode), true}
	case resp.StatusCode != http.StatusOK:
		return nil, &httpError{http.StatusBadGateway, "BAD_GATEWAY",
			fmt.Sprintf("books service refused the lookup of book %d with %d", id, resp.StatusCode), false}
	}
	var b book
	if err := json.Unmarshal(body, &b); err != nil || b.Title == "" || b.Author == "" {
		return nil, &httpError{http.StatusBadGateway, "BAD_GATEWAY", "books service sent an invalid book", false}
	}
	return &b, nil
}

// replay answers for a key already used: the same order, or 409.
func replay(c *gin.Context, hash string, row pgx.Row) (bool, error) {
	var stored string
	o, ok, err := scanOrder(row, &stored)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if stored != hash {
		return true, &httpError{http.StatusConflict, "IDEMPOTENCY_CONFLICT",
			"Idempotency-Key was already used with a different request body", false}
	}
	if !ok {
		return true, &httpError{http.StatusConflict, "IDEMPOTENCY_CONFLICT",
			"Idempotency-Key was used by an order that no longer exists", false}
	}
	c.Header("Location", "/v1/orders/"+strconv.FormatInt(o.ID, 10))
	c.Header("Idempotent-Replayed", "true")
	writeJSON(c, http.StatusCreated, &o)
	return true, nil
}

func validKey(key string) bool {
	if len(key) < 1 || len(key) > 255 {
		return false
	}
	for i := 0; i < len(key); i++ {
		if key[i] < 0x21 || key[i] > 0x7e {
			return false
		}
	}
	return true
}

func (s *server) createOrder(c *gin.Context) {
	if mediaType, _, _ := mime.ParseMediaType(c.GetHeader("Content-Type")); mediaType != "application/json" {
		writeError(c, &httpError{http.StatusUnsupportedMediaType, "UNSUPPORTED_MEDIA_TYPE",
			"Content-Type must be application/json", false})
		return
	}
	var in orderInput
	if err := c.ShouldBindJSON(&in); err != nil {
		writeError(c, &httpError{http.StatusBadRequest, "VALIDATION_ERROR", err.Error(), false})
		return
	}
	key, hasKey := c.Request.Header["Idempotency-Key"]
	if hasKey && !validKey(key[0]) {
		writeError(c, &httpError{http.StatusBadRequest, "VALIDATION_ERROR",
			"Idempotency-Key must be 1 to 255 visible ASCII characters", false})
		return
	}
	ctx := c.Request.Context()
	var hash string
	if hasKey {
		sum := sha256.Sum256([]byte(fmt.Sprintf("book_id=%d\nquantity=%d\n", *in.BookID, *in.Quantity)))
		hash = hex.EncodeToString(sum[:])
		if done, err := replay(c, hash, s.pool.QueryRow(ctx, findKey, key[0])); done || err != nil {
			if err != nil {
				writeError(c, err)
			}
			return
		}
	}

	b, err := s.fetchBook(ctx, *in.BookID, c.GetHeader("X-Request-ID"))
	if err != nil {
		writeError(c, err)
		return
	}
	unit, ok := cents(b.Price)
	if !ok {
		writeError(c, &httpError{http.StatusBadGateway, "BAD_GATEWAY", "books service sent an invalid price", false})
		return
	}
	args := []interface{}{*in.BookID, b.Title, b.Author, *in.Quantity, money(unit), money(unit * *in.Quantity)}
	statement := createOrder
	if hasKey {
		statement = createOrderWithKey
		args = append(args, key[0], hash)
	}
	// the order runs to the end even if the client leaves
	o, _, err := scanOrder(s.pool.QueryRow(context.Background(), statement, args...))
	if hasKey && errors.Is(err, pgx.ErrNoRows) {
		// a concurrent request inserted the key first: answer with its order
		done, err := replay(c, hash, s.pool.QueryRow(ctx, findKey, key[0]))
		if err == nil && !done {
			err = &httpError{http.StatusServiceUnavailable, "RETRY", "Idempotency-Key changed concurrently; retry", true}
		}
		if err != nil {
			writeError(c, err)
		}
		return
	}
	if err != nil {
		writeError(c, err)
		return
	}
	c.Header("Location", "/v1/orders/"+strconv.FormatInt(o.ID, 10))
	writeJSON(c, http.StatusCreated, &o)
}

func envInt(name string, def int) int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < 1 {
		log.Fatalf("%s: %q is not a positive integer", name, s)
	}
	return v
}

func main() {
	config, err := pgxpool.ParseConfig(os.Getenv("DATABASE_URL"))
	if err != nil {
		log.Fatalf("DATABASE_URL: %v", err)
	}
	size := envInt("POOL_SIZE", 16)
	config.MaxConns = int32(size)
	config.MinConns = int32(size)
	pool, err := pgxpool.ConnectConfig(context.Background(), config)
	if err != nil {
		log.Fatalf("database: %v", err)
	}
	defer pool.Close()
	booksURL := strings.TrimSuffix(os.Getenv("BOOKS_SERVICE_URL"), "/")
	if booksURL == "" {
		log.Fatal("BOOKS_SERVICE_URL is not set")
	}
	maxConns := envInt("BOOKS_MAX_CONNECTIONS", 64)
	s := &server{
		pool: pool,
		client: &http.Client{
			Timeout: time.Duration(envInt("BOOKS_TIMEOUT_MS", 2000)) * time.Millisecond,
			// the default keeps 2 idle connections per host: with 64 clients
			// most calls would open a new connection
			Transport: &http.Transport{MaxIdleConns: maxConns, MaxIdleConnsPerHost: maxConns,
				MaxConnsPerHost: maxConns, IdleConnTimeout: 90 * time.Second},
		},
		booksURL: booksURL,
	}

	binding.EnableDecoderDisallowUnknownFields = true
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.Use(gin.Recovery())
	r.POST("/v1/orders", s.createOrder)
	r.GET("/health", func(c *gin.Context) {
		ctx, cancel := context.WithTimeout(c.Request.Context(), time.Second)
		defer cancel()
		database := pool.Ping(ctx) == nil
		books := false
		if req, err := http.NewRequestWithContext(ctx, http.MethodGet, booksURL+"/health", nil); err == nil {
			if resp, err := s.client.Do(req); err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				books = resp.StatusCode == http.StatusOK
			}
		}
		state := map[bool]string{true: "healthy", false: "unhealthy"}
		status := http.StatusOK
		if !database || !books {
			status = http.StatusServiceUnavailable
		}
		writeJSON(c, status, gin.H{"status": state[database && books],
			"services": gin.H{"database": state[database], "books": state[books]}})
	})

	serve(r)
}

// serve listens on BIND_ADDRESS:PORT until SIGTERM or SIGINT, then drains.
func serve(handler http.Handler) {
	host := os.Getenv("BIND_ADDRESS")
	if host == "" {
		host = "127.0.0.1"
	}
	srv := &http.Server{Addr: net.JoinHostPort(host, os.Getenv("PORT")), Handler: handler}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	go func() {
		if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Fatal(err)
		}
	}()
	<-ctx.Done()
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(shutdown)
}
