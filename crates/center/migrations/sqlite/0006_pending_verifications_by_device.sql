-- A plan request asks whether its device has a pending verification job; without
-- this index that question scanned every verification ever made.
CREATE INDEX verifications_pending_by_device ON verifications(device_id) WHERE outcome = 'pending';
