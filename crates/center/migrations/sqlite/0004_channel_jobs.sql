-- A verification job runs over the channel like one upgrade: its last status
-- and progress make repeated and late reports idempotent.
ALTER TABLE verifications ADD COLUMN status INTEGER NOT NULL DEFAULT 0;
ALTER TABLE verifications ADD COLUMN percent INTEGER;

-- Which of its package's files a plan component delivers (0-based; the first by default).
ALTER TABLE plan_components ADD COLUMN file_position INTEGER NOT NULL DEFAULT 0;
