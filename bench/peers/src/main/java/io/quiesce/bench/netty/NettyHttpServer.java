package io.quiesce.bench.netty;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.socket.SocketChannel;
import io.netty.handler.codec.http.DefaultFullHttpResponse;
import io.netty.handler.codec.http.DefaultHttpHeadersFactory;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpHeaderValues;
import io.netty.handler.codec.http.HttpHeaders;
import io.netty.handler.codec.http.HttpRequest;
import io.netty.handler.codec.http.HttpResponseStatus;
import io.netty.handler.codec.http.HttpServerCodec;
import io.netty.handler.codec.http.HttpUtil;
import io.netty.handler.codec.http.HttpVersion;
import io.netty.util.ReferenceCountUtil;
import io.quiesce.bench.Args;
import java.nio.charset.StandardCharsets;

/**
 * Netty native HTTP/1.1 plaintext server (epoll, or io_uring with {@code --transport io_uring}):
 * {@code GET /plaintext} and {@code GET /} answer {@code Hello, World!} as text/plain with a
 * Content-Length; anything else is a 404.
 * Keep-alive unless the request says otherwise; pipelined requests are answered in order,
 * with one flush per read batch.
 */
public final class NettyHttpServer {

    private static final ByteBuf HELLO = Unpooled.unreleasableBuffer(
            Unpooled.directBuffer().writeBytes("Hello, World!".getBytes(StandardCharsets.US_ASCII)));
    private static final ByteBuf NOT_FOUND = Unpooled.unreleasableBuffer(
            Unpooled.directBuffer().writeBytes("Not Found".getBytes(StandardCharsets.US_ASCII)));

    private static HttpHeaders headers(ByteBuf body, boolean close) {
        HttpHeaders h = DefaultHttpHeadersFactory.headersFactory().newHeaders();
        h.set(HttpHeaderNames.CONTENT_TYPE, HttpHeaderValues.TEXT_PLAIN);
        h.setInt(HttpHeaderNames.CONTENT_LENGTH, body.readableBytes());
        if (close) h.set(HttpHeaderNames.CONNECTION, HttpHeaderValues.CLOSE);
        return h;
    }

    private static final HttpHeaders OK_HEADERS = headers(HELLO, false);
    private static final HttpHeaders OK_CLOSE_HEADERS = headers(HELLO, true);
    private static final HttpHeaders NOT_FOUND_HEADERS = headers(NOT_FOUND, false);
    private static final HttpHeaders NOT_FOUND_CLOSE_HEADERS = headers(NOT_FOUND, true);
    private static final HttpHeaders NO_TRAILERS = DefaultHttpHeadersFactory.trailersFactory().newHeaders();

    static final class Handler extends ChannelInboundHandlerAdapter {
        @Override
        public void channelRead(ChannelHandlerContext ctx, Object msg) {
            try {
                if (!(msg instanceof HttpRequest req)) return; // request bodies are ignored
                if (req.decoderResult().isFailure()) {
                    ctx.writeAndFlush(new DefaultFullHttpResponse(HttpVersion.HTTP_1_1,
                                    HttpResponseStatus.BAD_REQUEST, Unpooled.EMPTY_BUFFER))
                            .addListener(ChannelFutureListener.CLOSE);
                    return;
                }
                boolean keepAlive = HttpUtil.isKeepAlive(req);
                String uri = req.uri();
                boolean hello = uri.equals("/plaintext") || uri.equals("/");
                DefaultFullHttpResponse resp = hello
                        ? new DefaultFullHttpResponse(HttpVersion.HTTP_1_1, HttpResponseStatus.OK,
                                HELLO.duplicate(), keepAlive ? OK_HEADERS : OK_CLOSE_HEADERS, NO_TRAILERS)
                        : new DefaultFullHttpResponse(HttpVersion.HTTP_1_1, HttpResponseStatus.NOT_FOUND,
                                NOT_FOUND.duplicate(), keepAlive ? NOT_FOUND_HEADERS : NOT_FOUND_CLOSE_HEADERS,
                                NO_TRAILERS);
                if (keepAlive) {
                    ctx.write(resp, ctx.voidPromise());
                } else {
                    ctx.writeAndFlush(resp).addListener(ChannelFutureListener.CLOSE);
                }
            } finally {
                ReferenceCountUtil.release(msg);
            }
        }

        @Override
        public void channelReadComplete(ChannelHandlerContext ctx) {
            ctx.flush();
        }

        @Override
        public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
            ctx.close();
        }
    }

    public static void main(String[] argv) throws InterruptedException {
        Args args = Args.parse("NettyHttpServer", 8080, argv);
        NettyServer.run(args, new ChannelInitializer<SocketChannel>() {
            @Override
            protected void initChannel(SocketChannel ch) {
                ch.pipeline().addLast(new HttpServerCodec(), new Handler());
            }
        });
    }
}
