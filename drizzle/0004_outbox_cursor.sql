CREATE TABLE "outbox_cursor" (
	"id" integer PRIMARY KEY DEFAULT 1 NOT NULL,
	"tx" "xid8" NOT NULL,
	"last_id" bigint NOT NULL,
	CONSTRAINT "outbox_cursor_one_row" CHECK (id = 1)
);
--> statement-breakpoint
DROP INDEX "outbox_unpublished_idx";--> statement-breakpoint
ALTER TABLE "blogs" ALTER COLUMN "snapshot" SET DATA TYPE json;--> statement-breakpoint
ALTER TABLE "blogs" ALTER COLUMN "view" SET DATA TYPE json;--> statement-breakpoint
ALTER TABLE "blogs" ALTER COLUMN "view" SET DEFAULT '{}'::json;--> statement-breakpoint
ALTER TABLE "outbox" ALTER COLUMN "payload" SET DATA TYPE json;--> statement-breakpoint
ALTER TABLE "outbox" ADD COLUMN "tx" "xid8" DEFAULT pg_current_xact_id() NOT NULL;--> statement-breakpoint
CREATE INDEX "outbox_relay_idx" ON "outbox" USING btree ("tx","id");--> statement-breakpoint
-- Hand-written: every existing row now carries this migration's transaction id. Start the relay just before the
-- oldest unpublished event (anything published after it is sent again: at least once, deduplicated by Nats-Msg-Id).
INSERT INTO "outbox_cursor" ("id", "tx", "last_id")
SELECT 1, pg_current_xact_id(), coalesce(
  (SELECT min("id") - 1 FROM "outbox" WHERE "published_at" IS NULL),
  (SELECT max("id") FROM "outbox"),
  0);--> statement-breakpoint
ALTER TABLE "outbox" DROP COLUMN "published_at";