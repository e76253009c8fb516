CREATE TABLE "provider_refs" (
	"blog_id" text NOT NULL,
	"key" text NOT NULL,
	"value" text NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "provider_refs_blog_id_key_pk" PRIMARY KEY("blog_id","key")
);
