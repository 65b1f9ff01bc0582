-- A version package belongs to a product: a plan may use only its own
-- product's packages, and a verification job only a package of its device's
-- product. Every upload names its product (the API requires `product_key`).
--
-- The column is nullable here and required by the code: SQLite cannot add a
-- NOT NULL column with a foreign key to a table that has rows, and rebuilding
-- `packages` (create, copy, drop, rename) would cascade the drop into
-- package_files and verifications through their foreign keys.
ALTER TABLE packages ADD COLUMN product_id INTEGER REFERENCES products(id);

-- Packages uploaded before products owned them: their product is inferred
-- from how they were used, the most telling use first. Each step only fills
-- what the previous ones left empty.
--
-- 1. A package a plan uses takes the product of the oldest plan using it: a
--    plan could only target its product's devices, so that is the product the
--    package was uploaded for. A package that plans of two products shared
--    stays with the oldest plan's product; the other product's drafts must pick
--    one of their own packages before they are activated (or resumed). Plans
--    already active keep running: they were valid when they were activated.
UPDATE packages SET product_id = (
    SELECT plans.product_id
    FROM plan_components JOIN plans ON plans.id = plan_components.plan_id
    WHERE plan_components.package_id = packages.id
    ORDER BY plans.id LIMIT 1)
WHERE product_id IS NULL;

-- 2. Otherwise the product of the device its oldest verification job ran on.
UPDATE packages SET product_id = (
    SELECT devices.product_id
    FROM verifications JOIN devices ON devices.id = verifications.device_id
    WHERE verifications.package_id = packages.id
    ORDER BY verifications.id LIMIT 1)
WHERE product_id IS NULL;

-- 3. Otherwise, if the center holds exactly one product, that one: nothing
--    else could have used the package.
UPDATE packages SET product_id = (SELECT MIN(id) FROM products)
WHERE product_id IS NULL AND (SELECT COUNT(*) FROM products) = 1;

-- 4. What is left (never used, and several products or none to choose from)
--    stays unassigned rather than guessed: the API shows `product_key: null`,
--    no plan or verification job accepts it, and it can still be downloaded
--    by link and deleted. Upload it again under its product.

CREATE INDEX packages_by_product ON packages(product_id, id);
