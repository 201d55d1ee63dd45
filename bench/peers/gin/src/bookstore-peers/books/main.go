// GET /v1/books/{id} in Gin + pgx v4 (pgxpool), a peer for bench/peers.sh,
// which checks that it answers byte for byte what bookstore-books answers
// (books/books-book.c). Built in GOPATH mode from Debian's packages:
//
//	GO111MODULE=off GOPATH=$PWD/bench/peers/gin:/usr/share/gocode \
//	  go build -o /tmp/gin-books bookstore-peers/books
//
// Environment: PORT, BIND_ADDRESS (default 127.0.0.1), DATABASE_URL,
// POOL_SIZE (default 16).
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"bookstore-peers/jsonfix"

	"github.com/gin-gonic/gin"
	"github.com/jackc/pgx/v4"
	"github.com/jackc/pgx/v4/pgxpool"
)

// The statement bookstore-books prepares (books/books-store.c,
// BOOKS_SQL_GET); pgx prepares it once per connection.
const getBook = `SELECT id, title, author, description, price::text, active,
  to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
  to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
FROM books WHERE id = $1`

type book struct {
	ID          int64   `json:"id"`
	Title       string  `json:"title"`
	Author      string  `json:"author"`
	Description *string `json:"description"`
	Price       string  `json:"price"`
	Active      bool    `json:"active"`
	CreatedAt   string  `json:"created_at"`
	UpdatedAt   string  `json:"updated_at"`
}

type apiError struct {
	Error   string `json:"error"`
	Message string `json:"message"`
}

// writeJSON is c.JSON without its two differences from bookstore-books:
// c.JSON escapes <, > and & (\u003c, ...) and c.PureJSON ends the body with
// a newline. The rest of the escaping is matched by jsonfix.
func writeJSON(c *gin.Context, status int, v interface{}) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		c.AbortWithStatus(http.StatusInternalServerError)
		return
	}
	body := bytes.TrimSuffix(buf.Bytes(), []byte{'\n'})
	c.Data(status, "application/json", jsonfix.Rewrite(body, jsonfix.JSONGlib))
}

// parseID follows bookstore-books (bs_parse_id): ASCII digits only, 1 to 2^63-1.
func parseID(text string) (int64, bool) {
	if text == "" {
		return 0, false
	}
	for i := 0; i < len(text); i++ {
		if text[i] < '0' || text[i] > '9' {
			return 0, false
		}
	}
	id, err := strconv.ParseInt(text, 10, 64)
	return id, err == nil && id >= 1
}

func main() {
	config, err := pgxpool.ParseConfig(os.Getenv("DATABASE_URL"))
	if err != nil {
		log.Fatalf("DATABASE_URL: %v", err)
	}
	size := 16
	if s := os.Getenv("POOL_SIZE"); s != "" {
		if size, err = strconv.Atoi(s); err != nil || size < 1 {
			log.Fatalf("POOL_SIZE: %q is not a positive integer", s)
		}
	}
	config.MaxConns = int32(size)
	config.MinConns = int32(size)
	pool, err := pgxpool.ConnectConfig(context.Background(), config)
	if err != nil {
		log.Fatalf("database: %v", err)
	}
	defer pool.Close()

	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.Use(gin.Recovery())

	r.GET("/v1/books/:id", func(c *gin.Context) {
		id, ok := parseID(c.Param("id"))
		if !ok {
			writeJSON(c, http.StatusBadRequest, apiError{"VALIDATION_ERROR",
				"id must be a positive integer no larger than 9223372036854775807"})
			return
		}
		var b book
		err := pool.QueryRow(c.Request.Context(), getBook, id).Scan(&b.ID, &b.Title, &b.Author,
			&b.Description, &b.Price, &b.Active, &b.CreatedAt, &b.UpdatedAt)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			writeJSON(c, http.StatusNotFound, apiError{"NOT_FOUND", "book not found"})
		case err != nil:
			log.Printf("GET /v1/books/%d: %v", id, err)
			writeJSON(c, http.StatusServiceUnavailable, apiError{"SERVICE_UNAVAILABLE", "database unavailable"})
		case !b.Active:
			writeJSON(c, http.StatusGone, apiError{"GONE", "book was deleted"})
		default:
			writeJSON(c, http.StatusOK, &b)
		}
	})

	r.GET("/health", func(c *gin.Context) {
		ctx, cancel := context.WithTimeout(c.Request.Context(), time.Second)
		defer cancel()
		if err := pool.Ping(ctx); err != nil {
			writeJSON(c, http.StatusServiceUnavailable,
				gin.H{"status": "unhealthy", "services": gin.H{"database": "unhealthy"}})
			return
		}
		writeJSON(c, http.StatusOK, gin.H{"status": "healthy", "services": gin.H{"database": "healthy"}})
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
