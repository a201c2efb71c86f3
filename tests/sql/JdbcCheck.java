// The PostgreSQL JDBC driver (Debian's libpostgresql-jdbc-java) against perdure's SQL port: run
// by the e2e test `pg::jdbc_…` as `java -cp postgresql.jar JdbcCheck.java URL DEPLOYMENT_ID`.
// Exits non-zero with a message on the first mismatch; prints `ok` at the end.
import java.sql.*;

public class JdbcCheck {
    static void check(boolean ok, String what) {
        if (!ok) {
            System.err.println("mismatch: " + what);
            System.exit(1);
        }
    }

    public static void main(String[] args) throws Exception {
        String url = args[0], deployment = args[1];
        try (Connection conn = DriverManager.getConnection(url, "jdbc", "")) {
            DatabaseMetaData meta = conn.getMetaData();
            check(meta.getDatabaseProductName().equals("PostgreSQL"), "product " + meta.getDatabaseProductName());
            // Server-side prepared statements (the driver switches to them after prepareThreshold uses).
            try (PreparedStatement ps = conn.prepareStatement("SELECT id, created_at FROM sys_deployment WHERE id = ?")) {
                for (int i = 0; i < 7; i++) {
                    ps.setString(1, deployment);
                    try (ResultSet rs = ps.executeQuery()) {
                        check(rs.next(), "the deployment row");
                        check(rs.getString(1).equals(deployment), "id " + rs.getString(1));
                        check(rs.getTimestamp(2) != null, "created_at");
                    }
                }
            }
            try (PreparedStatement ps = conn.prepareStatement(
                    "SELECT count(*) FROM sys_invocation WHERE target_service_name = ? AND status = ?")) {
                ps.setString(1, "Greeter");
                ps.setString(2, "completed");
                try (ResultSet rs = ps.executeQuery()) {
                    check(rs.next() && rs.getLong(1) >= 1, "completed greetings");
                }
            }
            try (Statement st = conn.createStatement()) {
                try {
                    st.executeUpdate("DELETE FROM sys_invocation");
                    check(false, "DELETE ran");
                } catch (SQLException e) {
                    check("25006".equals(e.getSQLState()), "DELETE refused with " + e.getSQLState() + ": " + e.getMessage());
                }
                try {
                    st.executeQuery("SELECT * FROM no_such_table");
                    check(false, "an unknown table answered");
                } catch (SQLException e) {
                    check("42P01".equals(e.getSQLState()), "unknown table: " + e.getSQLState() + ": " + e.getMessage());
                }
            }
        }
        System.out.println("ok");
    }
}
