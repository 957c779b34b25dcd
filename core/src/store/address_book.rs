//! The `address_book` table: the user's own names for addresses, per chain (CAIP-2 chain,
//! canonical address). Validation and the in-memory copy the decoder reads are
//! [`crate::address_book`]'s; this module only moves rows.

use rusqlite::params;

use super::{as_i64, secs, Store, StoreError};

/// One stored label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressBookRow {
    /// CAIP-2 chain id.
    pub chain: String,
    /// The address in canonical form (EVM: lowercase `0x` hex).
    pub address: String,
    /// The user's label (sanitised when stored and when shown).
    pub label: String,
    /// When it was first added (Unix seconds; kept when the label is renamed).
    pub added_at: u64,
}

impl Store {
    /// Every label, by chain then address.
    pub fn address_book(&self) -> Result<Vec<AddressBookRow>, StoreError> {
        let conn = self.lock()?;
        let mut stmt =
            conn.prepare_cached("SELECT chain, address, label, added_at FROM address_book ORDER BY chain, address")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get::<_, i64>(3)?)))?;
        let mut out = Vec::new();
        for row in rows {
            let (chain, address, label, added_at) = row?;
            out.push(AddressBookRow { chain, address, label, added_at: secs("address_book.added_at", added_at)? });
        }
        Ok(out)
    }

    /// Sets the label of `chain`/`address` (a new row when there is none and fewer than
    /// `max_rows` rows exist). `Ok(false)`: the book is full and the address has no label.
    pub fn put_address_label(&self, row: &AddressBookRow, max_rows: usize) -> Result<bool, StoreError> {
        let conn = self.lock()?;
        let changed = conn
            .prepare_cached("UPDATE address_book SET label = ?3 WHERE chain = ?1 AND address = ?2")?
            .execute(params![row.chain, row.address, row.label])?;
        if changed > 0 {
            return Ok(true);
        }
        let inserted = conn
            .prepare_cached(
                "INSERT INTO address_book (chain, address, label, added_at)
                 SELECT ?1, ?2, ?3, ?4 WHERE (SELECT COUNT(*) FROM address_book) < ?5",
            )?
            .execute(params![row.chain, row.address, row.label, as_i64(row.added_at), as_i64(max_rows as u64)])?;
        Ok(inserted > 0)
    }

    /// Removes the label of `chain`/`address`; `Ok(false)` when there was none.
    pub fn remove_address_label(&self, chain: &str, address: &str) -> Result<bool, StoreError> {
        let n = self
            .lock()?
            .prepare_cached("DELETE FROM address_book WHERE chain = ?1 AND address = ?2")?
            .execute(params![chain, address])?;
        Ok(n > 0)
    }
}
