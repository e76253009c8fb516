CREATE TABLE "blogs" (
	"blog_id" text PRIMARY KEY NOT NULL,
	"instance_id" text NOT NULL,
	"status" text NOT NULL,
	"seq" integer DEFAULT 0 NOT NULL,
	"version" integer DEFAULT 0 NOT NULL,
	"snapshot" jsonb NOT NULL,
	"machine_version" integer NOT NULL,
	"view" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"wake_at" timestamp with time zone,
	"lease_owner" text,
	"lease_expires_at" timestamp with time zone,
	"quarantined_at" timestamp with time zone,
	"quarantine_reason" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "outbox" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"blog_id" text NOT NULL,
	"instance_id" text NOT NULL,
	"seq" integer NOT NULL,
	"payload" jsonb NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"published_at" timestamp with time zone
);
--> statement-breakpoint
CREATE INDEX "blogs_store_created_idx" ON "blogs" USING btree ("instance_id","created_at" DESC NULLS LAST,"blog_id" DESC NULLS LAST);--> statement-breakpoint
CREATE INDEX "blogs_created_idx" ON "blogs" USING btree ("created_at" DESC NULLS LAST,"blog_id" DESC NULLS LAST);--> statement-breakpoint
CREATE INDEX "blogs_active_idx" ON "blogs" USING btree ("status") WHERE status not in ('DONE', 'CANCELLED', 'FAILED') and quarantined_at is null;--> statement-breakpoint
CREATE UNIQUE INDEX "outbox_blog_seq_idx" ON "outbox" USING btree ("blog_id","seq");--> statement-breakpoint
CREATE INDEX "outbox_unpublished_idx" ON "outbox" USING btree ("id") WHERE published_at is null;