CREATE TABLE "store_leases" (
	"instance_id" text PRIMARY KEY NOT NULL,
	"owner" text,
	"expires_at" timestamp with time zone NOT NULL,
	"epoch" integer DEFAULT 0 NOT NULL
);
--> statement-breakpoint
CREATE INDEX "blogs_wake_idx" ON "blogs" USING btree ("wake_at") WHERE status = 'AWAITING_SELECTION' and quarantined_at is null;