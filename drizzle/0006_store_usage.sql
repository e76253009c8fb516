CREATE TABLE "store_usage" (
	"instance_id" text NOT NULL,
	"day" date NOT NULL,
	"input_tokens" bigint DEFAULT 0 NOT NULL,
	"output_tokens" bigint DEFAULT 0 NOT NULL,
	"images" integer DEFAULT 0 NOT NULL,
	CONSTRAINT "store_usage_instance_id_day_pk" PRIMARY KEY("instance_id","day")
);
