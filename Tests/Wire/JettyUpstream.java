// A servlet application on Jetty 9.4 (Debian's libjetty9-java), as an upstream that routes
// the way servlet containers do: `;` parameters are cut from each segment before mapping.
// Routes: /acme/* and /datasets/acme/* (acme's content), / (public). Each answers JSON
// naming the route and the identity headers it received.
//
//     javac -cp <jars> -d DIR JettyUpstream.java && java -cp DIR:<jars> JettyUpstream PORT
import java.io.IOException;
import javax.servlet.http.HttpServlet;
import javax.servlet.http.HttpServletRequest;
import javax.servlet.http.HttpServletResponse;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import org.eclipse.jetty.servlet.ServletContextHandler;
import org.eclipse.jetty.servlet.ServletHolder;

public class JettyUpstream {
    static String quote(String s) {
        if (s == null) return "null";
        return "\"" + s.replace("\\", "\\\\").replace("\"", "\\\"") + "\"";
    }

    static class Route extends HttpServlet {
        private final String name;

        Route(String name) { this.name = name; }

        @Override
        protected void service(HttpServletRequest request, HttpServletResponse response) throws IOException {
            response.setContentType("application/json");
            response.getWriter().write("{\"server\":\"jetty\",\"route\":" + quote(name)
                + ",\"user\":" + quote(request.getHeader("X-Forwarded-User"))
                + ",\"organization\":" + quote(request.getHeader("X-SSO-Organization"))
                + ",\"path\":" + quote(request.getRequestURI()) + "}");
        }
    }

    public static void main(String[] args) throws Exception {
        Server server = new Server();
        ServerConnector connector = new ServerConnector(server);
        connector.setHost("127.0.0.1");
        connector.setPort(Integer.parseInt(args[0]));
        server.addConnector(connector);
        ServletContextHandler context = new ServletContextHandler();
        context.setContextPath("/");
        context.addServlet(new ServletHolder(new Route("acme")), "/acme/*");
        context.addServlet(new ServletHolder(new Route("acme")), "/datasets/acme/*");
        context.addServlet(new ServletHolder(new Route("public")), "/");
        server.setHandler(context);
        server.start();
        System.out.println("listening on " + args[0]);
        server.join();
    }
}
