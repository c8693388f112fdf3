//! The operations endpoint's readiness for the controller: the directory reachable
//! and at this build's schema.

use sqlx::PgPool;

#[sqlx::test(migrator = "controller::db::MIGRATOR")]
async fn a_migrated_directory_is_ready_and_a_stale_schema_is_not(pool: PgPool) {
    let ready = controller::db::readiness(pool.clone());
    assert_eq!(ready().await, Ok(()));

    sqlx::query("DELETE FROM _sqlx_migrations WHERE version = (SELECT max(version) FROM _sqlx_migrations)")
        .execute(&pool)
        .await
        .unwrap();
    let answer = ready().await.unwrap_err();
    assert_eq!(answer, "the directory's schema is not at this build's migrations");

    pool.close().await;
    assert_eq!(ready().await.unwrap_err(), "the directory database is unreachable");
}
